package schema

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
		block := pem.EncodeToMemory(&pem.Block{Type: "FIELDSYNC ED25519 SEED", Bytes: priv.Seed()})
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
	block, _ := pem.Decode(b)
	if block == nil || len(block.Bytes) != ed25519.SeedSize {
		return nil, fmt.Errorf("seal key %s is damaged: restore it from the backup", path)
	}
	priv := ed25519.NewKeyFromSeed(block.Bytes)
	return &SealKey{priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
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
