package schema_test

import (
	"encoding/json"
	"os"
	"testing"

	"fieldsync/schema"
)

// deviceVector is one case of schema/testdata/device-sign.json, the vectors the Go code
// (here) and the field app's JavaScript (e2e TestAppDeviceSignatureVectors) are checked
// against: the sheet as the device holds it, its canonical form and fingerprint, the
// message signed, and a signature by the test key.
type deviceVector struct {
	Name          string         `json:"name"`
	Sheet         map[string]any `json:"sheet"`
	Canonical     string         `json:"canonical"`
	Fingerprint   string         `json:"fingerprint"`
	DeviceTime    string         `json:"device_time"`
	PrevSignature string         `json:"prev_signature"`
	Message       string         `json:"message"`
	Signature     string         `json:"signature"`
}

type deviceVectors struct {
	Note       string         `json:"note"`
	PublicKey  string         `json:"public_key"`
	PrivateKey string         `json:"private_key"`
	Vectors    []deviceVector `json:"vectors"`
}

const vectorsFile = "testdata/device-sign.json"

// TestDeviceSignatureVectors checks the canonical form, fingerprint and signed message of
// every vector, and that each vector's signature verifies with the test key while a
// signature of one vector does not verify for another. FIELDSYNC_WRITE_VECTORS=1 rewrites
// the expected values (review the diff).
func TestDeviceSignatureVectors(t *testing.T) {
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f deviceVectors
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	write := os.Getenv("FIELDSYNC_WRITE_VECTORS") == "1"
	if write && f.PrivateKey == "" {
		k, _ := schema.NewDeviceKey()
		f.PrivateKey, f.PublicKey = k.Marshal(), k.PublicB64()
	}
	pub, err := schema.ParseDeviceKey(f.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Vectors {
		v := &f.Vectors[i]
		sheet, err := schema.DecodeDoc(schema.MustJSON(v.Sheet))
		if err != nil {
			t.Fatal(err)
		}
		canon, fp := string(schema.SheetDeviceCanonical(sheet)), schema.SheetDeviceFingerprint(sheet)
		msg := string(schema.DeviceSignedMessage(fp, v.DeviceTime, v.PrevSignature))
		if write {
			k, err := schema.ParseDeviceKeyPrivate(f.PrivateKey)
			if err != nil {
				t.Fatal(err)
			}
			v.Canonical, v.Fingerprint, v.Message = canon, fp, msg
			if v.Signature, err = k.Sign([]byte(msg)); err != nil {
				t.Fatal(err)
			}
		}
		if canon != v.Canonical || fp != v.Fingerprint || msg != v.Message {
			t.Errorf("%s:\ncanonical %s\nwant      %s\nfingerprint %s want %s\nmessage %s\nwant    %s", v.Name, canon, v.Canonical, fp, v.Fingerprint, msg, v.Message)
		}
		if !schema.VerifyDeviceSignature(pub, []byte(v.Message), v.Signature) {
			t.Errorf("%s: the signature does not verify", v.Name)
		}
		other := f.Vectors[(i+1)%len(f.Vectors)]
		if schema.VerifyDeviceSignature(pub, []byte(other.Message), v.Signature) {
			t.Errorf("%s: its signature verifies for %s", v.Name, other.Name)
		}
	}
	if write {
		out, _ := json.MarshalIndent(f, "", "  ")
		if err := os.WriteFile(vectorsFile, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseDeviceKeyRefusesOtherKeys(t *testing.T) {
	for _, bad := range []string{"", "not base64!", "AAAA", "eA=="} {
		if _, err := schema.ParseDeviceKey(bad); schema.ErrorCode(err) != schema.CodeValidation {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
