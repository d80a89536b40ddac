package schema

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSettingDefaultsInRange: every default passes its own check, and every setting has a
// range or a list of known values.
func TestSettingDefaultsInRange(t *testing.T) {
	for _, d := range SettingDefs {
		var v any
		dec := json.NewDecoder(strings.NewReader(string(MustJSON(d.Default))))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if _, err := CheckSetting(d.Key, v); err != nil {
			t.Errorf("default of %s: %v", d.Key, err)
		}
		if _, ok := d.Range(); !ok && d.Kind != "timezone" && d.Kind != "lang" {
			t.Errorf("setting %s (%s) has no range", d.Key, d.Kind)
		}
	}
}

// TestStoredSettingOutOfRange: a stored value that fails its check is replaced by the
// default and reported, naming the setting.
func TestStoredSettingOutOfRange(t *testing.T) {
	s := NewSettings(map[string]any{"blob_max_bytes": json.Number("0"), "offline_days": json.Number("106752"), "hotline": "110"})
	if got := s.Int("blob_max_bytes"); got != 5<<20 {
		t.Errorf("blob_max_bytes %d, want the default", got)
	}
	if got := s.Int("offline_days"); got != 90 {
		t.Errorf("offline_days %d, want the default", got)
	}
	if s.String("hotline") != "110" {
		t.Errorf("a valid stored value was not kept")
	}
	if len(s.Invalid) != 2 || !strings.Contains(s.Invalid[0].Error(), "blob_max_bytes") || !strings.Contains(s.Invalid[1].Error(), "offline_days") {
		t.Errorf("invalid: %v", s.Invalid)
	}
}

// TestStoredSecretSettingRefusedQuietly: a refused secret setting is reported by name, never
// with its value.
func TestStoredSecretSettingRefusedQuietly(t *testing.T) {
	secret := strings.Repeat("s3cret", 100)
	s := NewSettings(map[string]any{"alert_smtp_password": secret})
	if len(s.Invalid) != 1 || !strings.Contains(s.Invalid[0].Error(), "alert_smtp_password") || strings.Contains(s.Invalid[0].Error(), "s3cret") {
		t.Errorf("invalid: %v", s.Invalid)
	}
}
