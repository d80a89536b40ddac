package server

import (
	"strings"
	"testing"
)

// The settings' history never shows a secret setting's value (the change log keeps none).
func TestSettingsHistoryHidesSecrets(t *testing.T) {
	e := newSheetEnv(t)
	e.must(e.do("PUT", "/api/v1/settings", e.admin, map[string]any{"alert_sms_token": "tok-very-secret"}), 200)
	coord := string(e.must(e.do("GET", "/api/v1/settings/history?key=alert_sms_token", e.coord, nil), 200).Raw)
	if strings.Contains(coord, "tok-very-secret") || !strings.Contains(coord, "secret") {
		t.Errorf("a coordinator reads a secret setting's history: %s", coord)
	}
}
