package schema

import (
	"encoding/json"
	"testing"
)

func TestMoneySettingsBounded(t *testing.T) {
	for _, c := range []struct {
		key string
		v   int64
		ok  bool
	}{
		{"commission_parts_pct", 100, true}, {"commission_parts_pct", 101, false},
		{"liability_max_pct", 101, false}, {"liability_after_days", 0, false},
		{"credit_threshold_fen", 0, false}, {"credit_threshold_fen", 1, true},
	} {
		_, err := CheckSetting(c.key, Num(c.v))
		if (err == nil) != c.ok {
			t.Errorf("%s = %d: err %v, want ok %v", c.key, c.v, err, c.ok)
		}
	}
	if _, err := CheckSetting("expense_kinds_without_approval", []any{"public_transport", "taxi"}); err != nil {
		t.Error(err)
	}
	if _, err := CheckSetting("expense_kinds_without_approval", []any{"limousine"}); err == nil {
		t.Error("an unknown expense kind was accepted")
	}
}

func TestSaleLinesChecked(t *testing.T) {
	f, _ := LookupEntity(EntSale)
	fl, _ := f.Field("lines")
	for _, bad := range []string{`[]`, `[{"item":"x","qty":0,"price_fen":1}]`, `[{"item":"x","qty":1,"price_fen":-1}]`,
		`[{"item":"x","qty":1,"price_fen":1.5}]`, `[{"item":"","qty":1,"price_fen":1}]`, `[{"item":"x","qty":1,"price_fen":1,"cost_fen":1}]`,
		`[{"item":"x","qty":1,"price_fen":"1"}]`} {
		if _, err := DecodeValue(fl, json.RawMessage(bad)); err == nil {
			t.Errorf("lines %s accepted", bad)
		}
	}
	if _, err := DecodeValue(fl, json.RawMessage(`[{"item":"硬盘","qty":2,"price_fen":50000}]`)); err != nil {
		t.Error(err)
	}
}
