package schema

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// SettingDef declares one setting: every figure of the policy is a setting of the deployment,
// never a constant in code.
type SettingDef struct {
	Key     string
	Kind    string // "int", "string", "list", "timezone", "lang", "url"
	Default any
	Doc     string
}

// SettingDefs lists every setting with its default.
var SettingDefs = []SettingDef{
	{"company_name", "string", "华东系统工程有限公司 East China Systems Engineering", "company name printed on forms"},
	{"hotline", "string", "400-800-1234", "the public after-sales hotline"},
	{"complaint_line", "string", "400-800-5678", "the separate complaint line"},
	{"commitment_text", "string", "接到通知后及时响应，按承诺时限到达现场。 Prompt response; on site within the committed time.", "service commitment printed on sheets"},
	{"timezone", "timezone", "Asia/Shanghai", "the company's time zone: months and printed times follow it"},
	{"response_minutes_critical", "int", 30, "response deadline for critical tickets"},
	{"response_minutes_high", "int", 60, "response deadline for high-urgency tickets"},
	{"response_minutes_normal", "int", 240, "response deadline for normal tickets"},
	{"response_minutes_low", "int", 1440, "response deadline for low-urgency tickets"},
	{"arrival_minutes_critical", "int", 240, "on-site arrival deadline for critical tickets"},
	{"arrival_minutes_high", "int", 480, "on-site arrival deadline for high-urgency tickets"},
	{"arrival_minutes_normal", "int", 1440, "on-site arrival deadline for normal tickets"},
	{"arrival_minutes_low", "int", 4320, "on-site arrival deadline for low-urgency tickets"},
	{"allowance_per_service_fen", "int", 5000, "service allowance per counted service (fen)"},
	{"bonus_reward_fen", "int", 20000, "reward for a month without an upheld complaint (fen)"},
	{"complaint_penalty_fen", "int", 5000, "penalty per upheld complaint (fen)"},
	{"complaint_forfeit_threshold", "int", 3, "upheld complaints in a month at which the bonus is forfeited"},
	{"labour_per_visit_fen", "int", 8000, "labour fee per on-site visit for non-dedicated staff (fen)"},
	{"offline_days", "int", 90, "longest supported offline period: tombstones and mutation results are kept this long"},
	{"completed_scope_days", "int", 30, "completed tickets stay on the technician's device this many days"},
	{"blob_max_bytes", "int", 5 << 20, "largest signature, stamp or photo accepted (bytes)"},
	{"sheet_required", "list", []any{"fault_symptoms", "inspection_record", "handling_result", "rating", "signer_name", "signature_blob", "stamp_blob"}, "feedback sheet items required for a complete sheet of an on-site service"},
	{"sheet_required_phone", "list", []any{"fault_symptoms", "inspection_record", "handling_result", "rating", "signer_name", "signature_blob", "stamp_blob"}, "feedback sheet items required for a complete sheet of a phone service"},
	{"sheet_required_online", "list", []any{"fault_symptoms", "inspection_record", "handling_result", "rating", "signer_name", "signature_blob", "stamp_blob"}, "feedback sheet items required for a complete sheet of an online service"},
	{"pdf_lang", "lang", "both", "labels on PDFs: zh, en or both"},
	{"push_mutations_per_hour", "int", 5000, "mutations one user's devices may push per hour (a day offline goes up at once; more waits)"},
	{"push_bytes_per_hour", "int", 32 << 20, "bytes of mutation fields one user's devices may push per hour"},
	{"max_devices_per_user", "int", 3, "devices one user may have registered at once (a coordinator revokes an old one)"},
	{"public_url", "string", "", "the address customers reach the server at (https://service.example.com): the QR code of a printed sheet links to its verify page there; unset, it carries the ticket number"},
	// Deadline watching and alerts (docs/alerts.md). The secret ones are in SecretSettings.
	{Key: "deadline_warning_minutes", Kind: "int", Default: 15, Doc: "warn this many minutes before a response or arrival deadline (0: no warnings)"},
	{Key: "alert_lang", Kind: "lang", Default: "both", Doc: "language of messages to group robots and the webhook: zh, en or both"},
	{Key: "alert_wecom_url", Kind: "url", Default: "", Doc: "WeCom group robot webhook address (secret)"},
	{Key: "alert_dingtalk_url", Kind: "url", Default: "", Doc: "DingTalk group robot webhook address with its access_token (secret)"},
	{Key: "alert_dingtalk_secret", Kind: "string", Default: "", Doc: "DingTalk robot signing secret, SEC... (secret)"},
	{Key: "alert_smtp_host", Kind: "string", Default: "", Doc: "SMTP server for alert mail (STARTTLS required)"},
	{Key: "alert_smtp_port", Kind: "int", Default: 587, Doc: "SMTP port"},
	{Key: "alert_smtp_username", Kind: "string", Default: "", Doc: "SMTP user name"},
	{Key: "alert_smtp_password", Kind: "string", Default: "", Doc: "SMTP password (secret)"},
	{Key: "alert_smtp_from", Kind: "string", Default: "", Doc: "sender address of alert mail"},
	{Key: "alert_sms_url", Kind: "url", Default: "", Doc: "SMS gateway address: receives POST {phone, text} (secret)"},
	{Key: "alert_sms_token", Kind: "string", Default: "", Doc: "bearer token for the SMS gateway (secret)"},
	{Key: "alert_webhook_url", Kind: "url", Default: "", Doc: "generic webhook address: receives every alert signed with HMAC-SHA256"},
	{Key: "alert_webhook_secret", Kind: "string", Default: "", Doc: "key of the webhook's HMAC-SHA256 signature (secret)"},
	{Key: "alert_workers", Kind: "int", Default: 4, Doc: "deliveries in flight at once"},
	{Key: "alert_timeout_seconds", Kind: "int", Default: 10, Doc: "how long one delivery may take"},
	{Key: "alert_retry_seconds", Kind: "int", Default: 30, Doc: "first retry delay; it doubles on each failure up to an hour"},
	{Key: "alert_give_up_minutes", Kind: "int", Default: 1440, Doc: "a delivery still failing this long after its event is given up and listed for admins"},
	{Key: "device_clock_tolerance_seconds", Kind: "int", Default: 300, Doc: "a service whose phone clock was further than this from the server's, or whose phone times come after the server received them or before the dispatch, is flagged in the month report, and its deadlines use the server's time of receipt"},
	{Key: "device_clock_keep_days", Kind: "int", Default: 365, Doc: "days of each device's clock history kept (GET /api/v1/devices/{id}/clock)"},
	{Key: "device_clock_keep_rows", Kind: "int", Default: 1000, Doc: "most clock readings kept per device, the newest"},
	// Money (docs/money.md): expenses, credit, commissions, liabilities.
	{Key: "expense_kinds_without_approval", Kind: "list", Default: []any{"public_transport"}, Doc: "expense kinds reimbursed without a prior approval (taxi and freight need the manager's)"},
	{Key: "expense_max_fen", Kind: "int", Default: 500000, Doc: "largest single expense accepted (fen); more is refused as a typing error"},
	{Key: "credit_threshold_fen", Kind: "int", Default: 1000000, Doc: "credit below this many fen is approved by the department manager, at or above it by leadership"},
	{Key: "commission_parts_pct", Kind: "int", Default: 30, Doc: "share of a collected parts sale's net profit paid to its handler (percent)"},
	{Key: "commission_software_pct", Kind: "int", Default: 40, Doc: "share of collected software charges paid to the technician (percent)"},
	{Key: "liability_after_days", Kind: "int", Default: 365, Doc: "a debt open this many days may be charged to its handler"},
	{Key: "liability_min_pct", Kind: "int", Default: 80, Doc: "smallest share of an old debt leadership may charge to its handler (percent)"},
	{Key: "liability_max_pct", Kind: "int", Default: 100, Doc: "largest share of an old debt leadership may charge to its handler (percent)"},
	{Key: "unreported_charge_penalty_fen", Kind: "int", Default: 10000, Doc: "penalty per case (fen) when a charge the technician never reported comes out through a complaint; the charge itself is deducted too"},
}

// SettingDefByKey returns the declaration of key.
func SettingDefByKey(key string) (SettingDef, bool) {
	for _, d := range SettingDefs {
		if d.Key == key {
			return d, true
		}
	}
	return SettingDef{}, false
}

// SettingRange bounds a setting: an integer's value, a string's length in characters, a
// list's number of items. A value outside it is refused, and a stored one is replaced by the
// default, so that no setting can stop the server or overflow a computation.
type SettingRange struct{ Min, Max int64 }

// settingRanges are the settings' bounds; a setting not named here takes its kind's bounds
// (kindRanges). Minutes of deadlines reach at most 30 days, money at most ¥100,000 per item,
// day counts at most 10 years (a time.Duration of days overflows past 106,751).
var settingRanges = map[string]SettingRange{
	"company_name":                   {1, 200},
	"hotline":                        {0, 50},
	"complaint_line":                 {0, 50},
	"commitment_text":                {0, 1000},
	"response_minutes_critical":      {0, 43200},
	"response_minutes_high":          {0, 43200},
	"response_minutes_normal":        {0, 43200},
	"response_minutes_low":           {0, 43200},
	"arrival_minutes_critical":       {0, 43200},
	"arrival_minutes_high":           {0, 43200},
	"arrival_minutes_normal":         {0, 43200},
	"arrival_minutes_low":            {0, 43200},
	"allowance_per_service_fen":      {0, 10_000_000},
	"bonus_reward_fen":               {0, 10_000_000},
	"complaint_penalty_fen":          {0, 10_000_000},
	"labour_per_visit_fen":           {0, 10_000_000},
	"complaint_forfeit_threshold":    {0, 100},
	"offline_days":                   {7, 3650},
	"completed_scope_days":           {1, 365},
	"blob_max_bytes":                 {16 << 10, 32 << 20},
	"sheet_required":                 {0, int64(len(SheetRequirable))},
	"push_mutations_per_hour":        {10, 1_000_000},
	"push_bytes_per_hour":            {64 << 10, 1 << 30},
	"max_devices_per_user":           {1, 50},
	"deadline_warning_minutes":       {0, 1440},
	"alert_smtp_port":                {1, 65535},
	"alert_workers":                  {1, 64},
	"alert_timeout_seconds":          {1, 300},
	"alert_retry_seconds":            {1, 3600},
	"alert_give_up_minutes":          {1, 43200},
	"device_clock_tolerance_seconds": {0, 86400},
	"device_clock_keep_days":         {1, 3650},
	"device_clock_keep_rows":         {1, 100_000},
	"expense_max_fen":                {1, 100_000_000},
	"credit_threshold_fen":           {1, 1_000_000_000},
	"commission_parts_pct":           {0, 100},
	"commission_software_pct":        {0, 100},
	"liability_after_days":           {1, 3650},
	"liability_min_pct":              {0, 100},
	"liability_max_pct":              {0, 100},
	"unreported_charge_penalty_fen":  {0, 100_000_000},
}

// kindRanges bound the settings settingRanges does not name. A time zone and a language
// are checked against their known values instead.
var kindRanges = map[string]SettingRange{"int": {0, 1_000_000_000}, "string": {0, 500}, "url": {0, 500}, "list": {0, 100}}

// Range returns the setting's bounds; ok is false for kinds checked by value (time zone,
// language).
func (d SettingDef) Range() (r SettingRange, ok bool) {
	if r, ok := settingRanges[d.Key]; ok {
		return r, true
	}
	r, ok = kindRanges[d.Kind]
	return r, ok
}

// Description is the setting's doc with its range, as GET /api/v1/settings and
// `fieldsync settings list` show it.
func (d SettingDef) Description() string {
	r, ok := d.Range()
	switch {
	case !ok:
		return d.Doc
	case d.Kind == "string" || d.Kind == "url":
		return fmt.Sprintf("%s (%d to %d characters)", d.Doc, r.Min, r.Max)
	case d.Kind == "list":
		return fmt.Sprintf("%s (%d to %d items)", d.Doc, r.Min, r.Max)
	}
	return fmt.Sprintf("%s (%d to %d)", d.Doc, r.Min, r.Max)
}

// CheckSetting validates a value for key, its type and its range, and returns it
// normalised. An error names the setting and, for a value out of range, the range.
func CheckSetting(key string, v any) (any, error) {
	out, err := checkSettingValue(key, v)
	if err != nil {
		return nil, err
	}
	def, _ := SettingDefByKey(key)
	r, ok := def.Range()
	if !ok {
		return out, nil
	}
	var n int64
	what := ""
	switch x := out.(type) {
	case json.Number:
		n, _ = x.Int64()
	case string:
		n, what = int64(utf8.RuneCountInString(x)), " characters long"
	case []any:
		n, what = int64(len(x)), " items long"
	}
	if n < r.Min || n > r.Max {
		return nil, FieldError(CodeValidation, key, "%s must be%s between %d and %d (got %d)", key, what, r.Min, r.Max, n)
	}
	return out, nil
}

// checkSettingValue checks a value's type and known values for key.
func checkSettingValue(key string, v any) (any, error) {
	def, ok := SettingDefByKey(key)
	if !ok {
		return nil, FieldError(CodeValidation, key, "unknown setting %q", key)
	}
	switch def.Kind {
	case "int":
		r, _ := def.Range()
		notInt := FieldError(CodeValidation, key, "%s must be an integer between %d and %d", key, r.Min, r.Max)
		n, ok := v.(json.Number)
		if !ok {
			switch x := v.(type) {
			case int:
				n = Num(int64(x))
			case int64:
				n = Num(x)
			case float64:
				if x != float64(int64(x)) {
					return nil, notInt
				}
				n = Num(int64(x))
			default:
				return nil, notInt
			}
		}
		i, err := n.Int64()
		if err != nil {
			return nil, notInt
		}
		return Num(i), nil
	case "string", "timezone", "lang", "url":
		s, ok := v.(string)
		if !ok {
			return nil, FieldError(CodeValidation, key, "%s must be a string", key)
		}
		if def.Kind == "url" && s != "" {
			if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, FieldError(CodeValidation, key, "%s must be an http or https address (or empty to switch it off)", key)
			}
		}
		if def.Kind == "timezone" {
			if _, err := time.LoadLocation(s); err != nil || s == "" {
				return nil, FieldError(CodeValidation, key, "%s %q is not a known time zone (e.g. Asia/Shanghai)", key, s)
			}
		}
		if def.Kind == "lang" && s != "zh" && s != "en" && s != "both" {
			return nil, FieldError(CodeValidation, key, "%s must be zh, en or both", key)
		}
		return s, nil
	case "list":
		list, ok := v.([]any)
		if !ok {
			return nil, FieldError(CodeValidation, key, "%s must be a list of strings", key)
		}
		seen := map[string]bool{}
		for _, x := range list {
			s, ok := x.(string)
			if !ok {
				return nil, FieldError(CodeValidation, key, "%s must be a list of strings", key)
			}
			if key == "expense_kinds_without_approval" && !slices.Contains(ExpenseKinds, s) {
				return nil, FieldError(CodeValidation, key, "%s: %q is not an expense kind (%s)", key, s, strings.Join(ExpenseKinds, ", "))
			}
			if strings.HasPrefix(key, "sheet_required") && !slices.Contains(SheetRequirable, s) {
				return nil, FieldError(CodeValidation, key, "%s: %q cannot be required (choose from %s)", key, s, strings.Join(SheetRequirable, ", "))
			}
			if seen[s] {
				return nil, FieldError(CodeValidation, key, "%s lists %q twice", key, s)
			}
			seen[s] = true
		}
		return list, nil
	}
	return nil, fmt.Errorf("setting %s has unknown kind %s", key, def.Kind)
}

// Settings is the deployment's settings, with defaults for keys never set.
type Settings struct {
	values map[string]any
	loc    *time.Location
	// Invalid lists the stored values that failed their check (written by an older version,
	// or by hand), each replaced by its default: a setting never stops the server.
	Invalid []error
}

// NewSettings builds Settings from stored values (key → value). A stored value that fails
// CheckSetting is replaced by the default and reported in Invalid.
func NewSettings(stored map[string]any) *Settings {
	s := &Settings{values: map[string]any{}}
	for _, d := range SettingDefs {
		s.values[d.Key] = d.Default
	}
	for _, k := range slices.Sorted(maps.Keys(stored)) {
		def, ok := SettingDefByKey(k)
		if !ok {
			continue
		}
		v, err := CheckSetting(k, stored[k])
		if err != nil {
			if SecretSetting(k) { // its value never goes into a log
				err = fmt.Errorf("stored secret setting %s is refused, the default is used", k)
			} else {
				err = fmt.Errorf("stored setting %s = %s is refused, the default %s is used: %w", k, MustJSON(stored[k]), MustJSON(def.Default), err)
			}
			s.Invalid = append(s.Invalid, err)
			continue
		}
		s.values[k] = v
	}
	loc, err := time.LoadLocation(s.String("timezone"))
	if err != nil {
		loc = time.UTC
	}
	s.loc = loc
	return s
}

// Int returns an integer setting.
func (s *Settings) Int(key string) int64 {
	switch v := s.values[key].(type) {
	case json.Number:
		n, _ := v.Int64()
		return n
	case int:
		return int64(v)
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

// String returns a string setting.
func (s *Settings) String(key string) string {
	v, _ := s.values[key].(string)
	return v
}

// List returns a list setting.
func (s *Settings) List(key string) []string {
	return Doc{"v": s.values[key]}.Strings("v")
}

// Location is the company's time zone.
func (s *Settings) Location() *time.Location { return s.loc }

// All returns every setting, sorted by key.
func (s *Settings) All() []Doc {
	keys := make([]string, 0, len(s.values))
	for k := range s.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Doc, 0, len(keys))
	for _, k := range keys {
		def, _ := SettingDefByKey(k)
		d := Doc{"key": k, "kind": def.Kind, "value": s.values[k], "default": def.Default, "description": def.Description()}
		if r, ok := def.Range(); ok {
			d["min"], d["max"] = r.Min, r.Max
		}
		out = append(out, d)
	}
	return out
}

// Deadlines returns the response and arrival deadlines for a ticket of the given urgency
// received at t.
func (s *Settings) Deadlines(urgency string, t time.Time) (response, arrival time.Time) {
	r := s.Int("response_minutes_" + urgency)
	a := s.Int("arrival_minutes_" + urgency)
	return t.Add(time.Duration(r) * time.Minute), t.Add(time.Duration(a) * time.Minute)
}
