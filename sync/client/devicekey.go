package client

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// The device's signing key and its chain of sheet signatures live in the local store's meta
// (docs/feedback-sheets.md, "Signed on the device"): the private key never leaves the file.
const (
	metaDeviceKey     = "device_key"      // PKCS #8 DER, base64
	metaLastSignature = "device_last_sig" // the last sheet signature this device made
)

// deviceKey reads the device key; when there is none it makes one if create, else it
// returns sql.ErrNoRows.
func deviceKey(tx *sql.Tx, create bool) (*schema.DeviceKey, error) {
	var b64 string
	err := tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, metaDeviceKey).Scan(&b64)
	if err == nil {
		return schema.ParseDeviceKeyPrivate(b64)
	}
	if !errors.Is(err, sql.ErrNoRows) || !create {
		return nil, err
	}
	k, err := schema.NewDeviceKey()
	if err != nil {
		return nil, err
	}
	return k, setMeta(tx, metaDeviceKey, k.Marshal())
}

// DevicePublicKey returns the public key of the device whose store is at dbPath, making the
// key pair the first time: what Login registers.
func DevicePublicKey(dbPath string) (string, error) {
	st, err := openStore(dbPath)
	if err != nil {
		return "", err
	}
	defer st.close()
	var k *schema.DeviceKey
	err = st.update(func(tx *sql.Tx) error {
		k, err = deviceKey(tx, true)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("client: device key: %w", err)
	}
	return k.PublicB64(), nil
}

// Login logs in as a device (POST /mobile/v1/auth/login), registering the device's public
// key (made on first use and kept in the store at dbPath), and returns the device token.
func Login(ctx context.Context, baseURL, dbPath, username, password, deviceID, deviceName string) (string, error) {
	pub, err := DevicePublicKey(dbPath)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"username": username, "password": password, "device_id": deviceID,
		"device_name": deviceName, "public_key": pub})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/mobile/v1/auth/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("client: login: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		re := decodeRemoteError(resp)
		return "", fmt.Errorf("client: login: %s: %s", re.Code, re.Message)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		return "", fmt.Errorf("client: login: no token in the answer")
	}
	return out.Token, nil
}

// SignSheet queues the sign of feedback sheet sheetID as the device holds it now (pending
// edits included): the device signs the sheet's device fingerprint with its key, its clock
// and its previous signature, offline, and the signature goes with the sign mutation. A
// store without a key (a token from elsewhere than Login) queues an unsigned sign.
func (c *Client) SignSheet(sheetID string) (string, error) {
	r, ok, err := c.Record(schema.EntSheet, sheetID)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("client: feedback sheet %q is not on this device", sheetID)
	}
	sheet, err := schema.DecodeDoc(r.Data)
	if err != nil {
		return "", fmt.Errorf("client: feedback sheet %s: %w", sheetID, err)
	}
	if err := c.alive(); err != nil {
		return "", err
	}
	now := c.cfg.Now().UTC()
	m := syncer.Mutation{MID: uuid.NewString(), Entity: schema.EntSheet, ID: sheetID, Op: "action", Action: schema.SheetSign,
		BaseVersion: r.Version, At: now.Format(time.RFC3339Nano), Fields: map[string]json.RawMessage{}}
	err = c.st.update(func(tx *sql.Tx) error {
		k, err := deviceKey(tx, false)
		if errors.Is(err, sql.ErrNoRows) {
			return insertMutation(tx, m)
		} else if err != nil {
			return err
		}
		var prev string
		if err := tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, metaLastSignature).Scan(&prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		dt := now.Format(time.RFC3339Nano)
		sig, err := k.Sign(schema.DeviceSignedMessage(schema.SheetDeviceFingerprint(sheet), dt, prev))
		if err != nil {
			return err
		}
		m.Fields["device_time"], m.Fields["device_signature"] = mustJSON(dt), mustJSON(sig)
		if prev != "" {
			m.Fields["device_prev_signature"] = mustJSON(prev)
		}
		if err := setMeta(tx, metaLastSignature, sig); err != nil {
			return err
		}
		return insertMutation(tx, m)
	})
	if err != nil {
		return "", err
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	c.notify([]change{{schema.EntSheet, sheetID, opOf("action")}})
	return m.MID, nil
}
