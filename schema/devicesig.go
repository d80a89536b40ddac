package schema

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
)

// A device signs a sheet when the customer signs, offline, with its own ECDSA P-256 key
// (WebCrypto in the field app, crypto/ecdsa in the Go SDK). docs/feedback-sheets.md tells
// how to check such a signature by hand; schema/testdata/device-sign.json holds the vectors
// the Go and the JavaScript implementations are both tested against.

// SheetDeviceFields are the fields the device writes and signs: what the technician and the
// customer filled in on the phone. Fields the server sets (number, names, times of receipt,
// the seal chain) are not known offline and are covered by the server's seal instead.
var SheetDeviceFields = []string{
	"id", "ticket_id", "supersedes_id", "arrived_at", "departed_at", "fault_symptoms", "inspection_record",
	"handling_result", "parts", "labour_fen", "parts_fen", "shipping_fen", "rating", "rating_comment",
	"signer_name", "absent_reason", "location",
}

// SheetDeviceSealed are the fields a device signature adds to the sheet; the server's seal
// covers them when present (fingerprint format 2).
var SheetDeviceSealed = []string{"device_fingerprint", "device_time", "device_prev_signature", "device_signature", "device_key", "device_chain_gap"}

// SheetDeviceCanonical returns the canonical JSON a device signs the fingerprint of:
//
//	{"format": 1, "images": {field: image sha256}, "sheet": {SheetDeviceFields}}
//
// with an empty value (absent, null, "", 0, false, [], {}) written as null: the server fills
// in defaults (0 fees, an empty parts list) the device may not have written. An image's
// name is the SHA-256 of its content.
func SheetDeviceCanonical(sheet Doc) []byte {
	content := map[string]any{}
	for _, k := range SheetDeviceFields {
		content[k] = normalizeDevice(sheet[k])
	}
	images := map[string]any{}
	for _, k := range SheetBlobFields {
		if s := sheet.Str(k); s != "" {
			images[k] = s
		}
	}
	b, err := CanonicalJSON(map[string]any{"format": 1, "sheet": content, "images": images})
	if err != nil {
		panic(fmt.Sprintf("schema: canonical device sheet: %v", err))
	}
	return b
}

func normalizeDevice(v any) any {
	v = normalizeSealed(v)
	switch x := v.(type) {
	case bool:
		if !x {
			return nil
		}
	case int:
		if x == 0 {
			return nil
		}
	case int64:
		if x == 0 {
			return nil
		}
	case json.Number:
		if n, err := x.Int64(); err == nil && n == 0 {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

// SheetDeviceFingerprint is the lower-case hex SHA-256 of SheetDeviceCanonical.
func SheetDeviceFingerprint(sheet Doc) string {
	sum := sha256.Sum256(SheetDeviceCanonical(sheet))
	return hex.EncodeToString(sum[:])
}

// DeviceSignedMessage is the message a device signs: the canonical JSON of
//
//	{"fingerprint": device fingerprint, "device_time": RFC 3339 time of the device clock,
//	 "prev_signature": the device's previous sheet signature or null, "purpose": "fieldsync device sheet signature"}
func DeviceSignedMessage(fingerprint, deviceTime, prevSignature string) []byte {
	var prev any
	if prevSignature != "" {
		prev = prevSignature
	}
	b, _ := CanonicalJSON(map[string]any{"purpose": "fieldsync device sheet signature", "fingerprint": fingerprint,
		"device_time": deviceTime, "prev_signature": prev})
	return b
}

// ParseDeviceKey reads a device public key: base64 of the SubjectPublicKeyInfo (DER) of an
// ECDSA P-256 key, as WebCrypto exports it ("spki") and openssl reads it.
func ParseDeviceKey(b64 string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b64) > 400 {
		return nil, FieldError(CodeValidation, "public_key", "设备公钥格式不对 / public_key is not base64 of a public key (SubjectPublicKeyInfo, DER)")
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, FieldError(CodeValidation, "public_key", "设备公钥格式不对 / public_key is not a public key (SubjectPublicKeyInfo, DER): %v", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, FieldError(CodeValidation, "public_key", "设备公钥须为 ECDSA P-256 / public_key is not an ECDSA P-256 key")
	}
	return pub, nil
}

// VerifyDeviceSignature checks sig (base64 of r‖s, 32 bytes each, as WebCrypto writes an
// ECDSA signature) over SHA-256 of msg.
func VerifyDeviceSignature(pub *ecdsa.PublicKey, msg []byte, sig string) bool {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != 64 {
		return false
	}
	h := sha256.Sum256(msg)
	r, s := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}

// DeviceKey is a device's private key in the Go SDK.
type DeviceKey struct{ priv *ecdsa.PrivateKey }

// NewDeviceKey makes a key pair.
func NewDeviceKey() (*DeviceKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &DeviceKey{k}, nil
}

// ParseDeviceKeyPrivate reads a key written by Marshal (PKCS #8 DER in base64).
func ParseDeviceKeyPrivate(b64 string) (*DeviceKey, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("device key: not an ECDSA P-256 key")
	}
	return &DeviceKey{ek}, nil
}

// Marshal writes the private key (PKCS #8 DER in base64).
func (k *DeviceKey) Marshal() string {
	der, _ := x509.MarshalPKCS8PrivateKey(k.priv)
	return base64.StdEncoding.EncodeToString(der)
}

// PublicB64 is the public key as registered at login (SubjectPublicKeyInfo DER, base64).
func (k *DeviceKey) PublicB64() string {
	der, _ := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

// Sign signs SHA-256 of msg and returns base64 of r‖s.
func (k *DeviceKey) Sign(msg []byte) (string, error) {
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, h[:])
	if err != nil {
		return "", err
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	return base64.StdEncoding.EncodeToString(raw), nil
}
