package schema

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
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

// CheckSetting validates a value for key and returns it normalised.
func CheckSetting(key string, v any) (any, error) {
	def, ok := SettingDefByKey(key)
	if !ok {
		return nil, FieldError(CodeValidation, key, "unknown setting %q", key)
	}
	switch def.Kind {
	case "int":
		n, ok := v.(json.Number)
		if !ok {
			if f, isF := v.(float64); isF && f == float64(int64(f)) {
				n = Num(int64(f))
			} else {
				return nil, FieldError(CodeValidation, key, "%s must be an integer", key)
			}
		}
		i, err := n.Int64()
		if err != nil || i < 0 {
			return nil, FieldError(CodeValidation, key, "%s must be a non-negative integer", key)
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
		for _, x := range list {
			s, ok := x.(string)
			if !ok {
				return nil, FieldError(CodeValidation, key, "%s must be a list of strings", key)
			}
			if strings.HasPrefix(key, "sheet_required") && !slices.Contains(SheetRequirable, s) {
				return nil, FieldError(CodeValidation, key, "%s: %q cannot be required (choose from %s)", key, s, strings.Join(SheetRequirable, ", "))
			}
		}
		return list, nil
	}
	return nil, fmt.Errorf("setting %s has unknown kind %s", key, def.Kind)
}

// Settings is the deployment's settings, with defaults for keys never set.
type Settings struct {
	values map[string]any
	loc    *time.Location
}

// NewSettings builds Settings from stored values (key → value).
func NewSettings(stored map[string]any) *Settings {
	s := &Settings{values: map[string]any{}}
	for _, d := range SettingDefs {
		s.values[d.Key] = d.Default
	}
	for k, v := range stored {
		if _, ok := SettingDefByKey(k); ok {
			s.values[k] = v
		}
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
		out = append(out, Doc{"key": k, "value": s.values[k], "description": def.Doc})
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
