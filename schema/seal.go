package schema

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SealKeyFile is the Ed25519 private key in the data folder, made at first start. Losing it
// makes old seals unverifiable: back it up with the database.
const SealKeyFile = "seal.key"

// SealKey seals feedback sheets: an Ed25519 signature over a sheet's fingerprint.
type SealKey struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// LoadSealKey reads the deployment's key from dataDir, generating it the first time.
func LoadSealKey(dataDir string) (*SealKey, error) {
	path := filepath.Join(dataDir, SealKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		block := pem.EncodeToMemory(&pem.Block{Type: sealKeyPEM, Bytes: priv.Seed()})
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, block, 0o600); err != nil {
			return nil, fmt.Errorf("write seal key: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, err
		}
		b = block
	} else if err != nil {
		return nil, fmt.Errorf("read seal key %s: %w", path, err)
	}
	k, err := ParseSealKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("seal key %s is damaged: restore it from the backup", path)
	}
	return k, nil
}

// sealKeyPEM is the type of the PEM block a seal key file holds.
const sealKeyPEM = "FIELDSYNC ED25519 SEED"

// ParseSealKey reads a seal key in its encoded form: the text of a seal.key file (a PEM
// block), or only the base64 line inside it. Its errors never quote the text.
func ParseSealKey(text string) (*SealKey, error) {
	text = strings.TrimSpace(text)
	var seed []byte
	if strings.HasPrefix(text, "-----BEGIN") {
		block, _ := pem.Decode([]byte(text))
		if block == nil {
			return nil, errors.New("not a PEM block")
		}
		seed = block.Bytes
	} else {
		var err error
		if seed, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), "")); err != nil {
			return nil, errors.New("neither a PEM block nor base64")
		}
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("holds %d bytes, not the %d of an Ed25519 seed", len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &SealKey{priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
}

// OpenSealKey returns the instance's seal key: the file named by file (--seal-key), else the
// encoded key text (FIELDSYNC_SEAL_KEY), else the data folder's seal.key, generated at the
// first start. A key given is never generated: a mistyped path is an error.
//
// On PostgreSQL, where several instances share one database and each must seal with the same
// key, the database keeps the public key sealing its sheets (never the private one): the
// first instance registers its key, and an instance whose key differs is refused, as is an
// instance that would generate a new key for a database that has one. A database that holds
// sealed sheets but no registered key (copied from SQLite) takes only a key that verifies
// its newest sealed sheet.
func OpenSealKey(ctx context.Context, db *DB, dataDir, file, text string) (*SealKey, error) {
	var k *SealKey
	var from string
	switch {
	case file != "" && text != "":
		return nil, errors.New("the seal key is given twice, as --seal-key (FIELDSYNC_SEAL_KEY_FILE) and as FIELDSYNC_SEAL_KEY: give one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--seal-key: %w", err)
		}
		if k, err = ParseSealKey(string(b)); err != nil {
			return nil, fmt.Errorf("--seal-key %s: %v", file, err)
		}
		from = "--seal-key " + file
	case text != "":
		var err error
		if k, err = ParseSealKey(text); err != nil {
			return nil, fmt.Errorf("FIELDSYNC_SEAL_KEY: %v (give the text of a seal.key file, or the base64 line inside it)", err)
		}
		from = "FIELDSYNC_SEAL_KEY"
	default:
		from = filepath.Join(dataDir, SealKeyFile)
		if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) && db.Postgres {
			// Check before generating: a new instance must not make a key of its own.
			reg, err := registeredSealKey(ctx, db)
			if err != nil {
				return nil, err
			}
			if n := sealedSheets(ctx, db); reg != "" || n > 0 {
				return nil, fmt.Errorf("the database holds %d sealed sheets (seal key %s), and this instance has no seal key (no --seal-key, no FIELDSYNC_SEAL_KEY, no %s): give every instance the key they were sealed with (docs/operations.md, \"Several instances: blobs and the seal key\")", n, KeyID(reg), from)
			}
		}
		var err error
		if k, err = LoadSealKey(dataDir); err != nil {
			return nil, err
		}
	}
	if db.Postgres {
		if err := registerSealKey(ctx, db, k, from); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// KeyID is the short form of a hex public key shown in messages: its first 16 characters.
func KeyID(pubHex string) string { return pubHex[:min(16, len(pubHex))] }

func registeredSealKey(ctx context.Context, db *DB) (string, error) {
	var pub string
	err := db.W.QueryRowContext(ctx, `SELECT public_key FROM seal_key`).Scan(&pub)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the registered seal key: %w", err)
	}
	return pub, nil
}

// registerSealKey records k as the database's seal key if none is, and refuses k unless it
// is the one recorded.
func registerSealKey(ctx context.Context, db *DB, k *SealKey, from string) error {
	reg, err := registeredSealKey(ctx, db)
	if err != nil {
		return err
	}
	if reg == "" {
		var fp, seal string
		err := db.W.QueryRowContext(ctx, `SELECT data ->> 'fingerprint', data ->> 'seal' FROM records
			WHERE entity = ? AND data ->> 'seal' IS NOT NULL AND data ->> 'seal' <> '' ORDER BY last_seq DESC LIMIT 1`, EntSheet).Scan(&fp, &seal)
		if err == nil && !VerifySeal(k.Public(), fp, seal) {
			return fmt.Errorf("seal key %s (%s) did not seal this database's sheets: give every instance the key they were sealed with (docs/operations.md, \"Several instances: blobs and the seal key\")", KeyID(k.PublicHex()), from)
		} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check the seal key against the sealed sheets: %w", err)
		}
		// Instances starting together: one row wins, the others compare with it below.
		if _, err := db.W.ExecContext(ctx, `INSERT INTO seal_key (one, public_key, registered_at) VALUES (1, ?, ?) ON CONFLICT (one) DO NOTHING`,
			k.PublicHex(), time.Now().UTC().Format(time.RFC3339)); err != nil {
			return fmt.Errorf("register the seal key: %w", err)
		}
		if reg, err = registeredSealKey(ctx, db); err != nil {
			return err
		}
	}
	if reg != k.PublicHex() {
		return fmt.Errorf("seal key %s (%s) is not the database's seal key %s, which has sealed %d sheets: every instance must seal with the same key; give this one the same --seal-key or FIELDSYNC_SEAL_KEY as the others (docs/operations.md, \"Several instances: blobs and the seal key\")",
			KeyID(k.PublicHex()), from, KeyID(reg), sealedSheets(ctx, db))
	}
	return nil
}

// sealedSheets counts the sealed feedback sheets, for messages (0 if it cannot tell).
func sealedSheets(ctx context.Context, db *DB) int {
	var n int
	db.W.QueryRowContext(ctx, `SELECT COUNT(*) FROM records WHERE entity = ? AND data ->> 'seal' IS NOT NULL AND data ->> 'seal' <> ''`, EntSheet).Scan(&n)
	return n
}

// Seal signs a fingerprint (hex) and returns the signature in base64.
func (k *SealKey) Seal(fingerprint string) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, []byte(fingerprint)))
}

// VerifySeal checks a seal made by Seal against the public key.
func VerifySeal(pub ed25519.PublicKey, fingerprint, seal string) bool {
	sig, err := base64.StdEncoding.DecodeString(seal)
	return err == nil && ed25519.Verify(pub, []byte(fingerprint), sig)
}

// Public returns the public key.
func (k *SealKey) Public() ed25519.PublicKey { return k.pub }

// PublicHex returns the public key in hex, as published at /verify/key.
func (k *SealKey) PublicHex() string { return hex.EncodeToString(k.pub) }
