package schema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Alert events: what people are told of. The deadline events are also ticket_event kinds,
// written by the deadline watcher (package sync); the others follow from a workflow step.
const (
	AlertDeadlineWarning = "deadline_warning" // a deadline is near and not met
	AlertDeadlineMissed  = "deadline_missed"  // a deadline passed and was not met
	AlertDispatched      = "dispatched"       // a ticket was dispatched to a technician
	AlertEscalated       = "escalated"        // a ticket was escalated to the manager
	AlertReportWaiting   = "report_waiting"   // a technician's report waits for verification
	AlertComplaint       = "complaint"        // a complaint was recorded
	AlertSheetReturned   = "sheet_returned"   // a feedback sheet was returned to its technician
	AlertReceivableAging = "receivable_aging" // a sale's debt crossed an ageing threshold
)

// AlertEvents lists every alert event.
var AlertEvents = []string{AlertDeadlineWarning, AlertDeadlineMissed, AlertDispatched, AlertEscalated,
	AlertReportWaiting, AlertComplaint, AlertSheetReturned, AlertReceivableAging}

// Alert channels. The group channels (WeCom and DingTalk group robots, the webhook) post once
// per event, naming the people who chose them; email and SMS go to each person.
const (
	ChanWeCom    = "wecom"
	ChanDingTalk = "dingtalk"
	ChanEmail    = "email"
	ChanSMS      = "sms"
	ChanWebhook  = "webhook"
)

// AlertChannels lists every channel.
var AlertChannels = []string{ChanWeCom, ChanDingTalk, ChanEmail, ChanSMS, ChanWebhook}

// GroupChannel reports whether ch posts once per event rather than once per person.
func GroupChannel(ch string) bool { return ch == ChanWeCom || ch == ChanDingTalk || ch == ChanWebhook }

// ChannelConfigured reports whether the settings give ch somewhere to deliver.
func ChannelConfigured(s *Settings, ch string) bool {
	switch ch {
	case ChanWeCom:
		return s.String("alert_wecom_url") != ""
	case ChanDingTalk:
		return s.String("alert_dingtalk_url") != ""
	case ChanEmail:
		return s.String("alert_smtp_host") != ""
	case ChanSMS:
		return s.String("alert_sms_url") != ""
	case ChanWebhook:
		return s.String("alert_webhook_url") != ""
	}
	return false
}

// SecretSettings are the settings only an admin may read: they are never sent to field
// devices, never shown to other roles, and the change log keeps no copy of their values.
var SecretSettings = []string{"alert_wecom_url", "alert_dingtalk_url", "alert_dingtalk_secret", "alert_smtp_password",
	"alert_sms_url", "alert_sms_token", "alert_webhook_secret"}

// SecretSetting reports whether key is a secret setting.
func SecretSetting(key string) bool { return slices.Contains(SecretSettings, key) }

// AlertPrefs is what one person receives: for each event the channels, and the language of
// their messages (zh, en or both).
type AlertPrefs struct {
	Lang   string              `json:"lang"`
	Events map[string][]string `json:"events"`
}

// DefaultAlertPrefs are a role's preferences until the person sets their own.
func DefaultAlertPrefs(role string) AlertPrefs {
	ev := map[string][]string{}
	switch role {
	case RoleCoordinator:
		ev[AlertDeadlineWarning] = []string{ChanWeCom, ChanDingTalk}
		ev[AlertDeadlineMissed] = []string{ChanWeCom, ChanDingTalk, ChanEmail}
		ev[AlertReportWaiting] = []string{ChanWeCom, ChanDingTalk}
	case RoleManager:
		ev[AlertDeadlineMissed] = []string{ChanWeCom, ChanDingTalk, ChanEmail}
		ev[AlertEscalated] = []string{ChanWeCom, ChanDingTalk}
		ev[AlertComplaint] = []string{ChanWeCom, ChanDingTalk, ChanEmail}
		ev[AlertReceivableAging] = []string{ChanEmail}
	case RoleTechnician:
		ev[AlertReceivableAging] = []string{ChanSMS}
		ev[AlertDispatched] = []string{ChanSMS}
		ev[AlertDeadlineWarning] = []string{ChanSMS}
		ev[AlertSheetReturned] = []string{ChanSMS}
	}
	return AlertPrefs{Lang: "zh", Events: ev}
}

// CheckAlertPrefs validates preferences sent by a person and returns them normalised.
func CheckAlertPrefs(b []byte) (AlertPrefs, error) {
	var p AlertPrefs
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, Errorf(CodeBadRequest, "alert preferences: %v (send {\"lang\": \"zh\", \"events\": {\"deadline_missed\": [\"wecom\", \"sms\"]}})", err)
	}
	if p.Lang == "" {
		p.Lang = "zh"
	}
	if p.Lang != "zh" && p.Lang != "en" && p.Lang != "both" {
		return p, FieldError(CodeValidation, "lang", "lang must be zh, en or both")
	}
	if p.Events == nil {
		p.Events = map[string][]string{}
	}
	for ev, chans := range p.Events {
		if !slices.Contains(AlertEvents, ev) {
			return p, FieldError(CodeValidation, "events", "unknown alert event %q (one of %s)", ev, strings.Join(AlertEvents, ", "))
		}
		for _, ch := range chans {
			if !slices.Contains(AlertChannels, ch) {
				return p, FieldError(CodeValidation, "events", "%s: unknown channel %q (one of %s)", ev, ch, strings.Join(AlertChannels, ", "))
			}
		}
		slices.Sort(chans)
		p.Events[ev] = slices.Compact(chans)
	}
	return p, nil
}

// AlertFacts is what a message says: the ticket and the event's particulars.
type AlertFacts struct {
	Kind     string    `json:"kind"`
	TicketID string    `json:"ticket_id,omitempty"`
	Number   string    `json:"ticket_number,omitempty"`
	Urgency  string    `json:"urgency,omitempty"`
	Customer string    `json:"customer,omitempty"`
	Deadline string    `json:"deadline,omitempty"` // response or arrival
	DueAt    time.Time `json:"due_at,omitzero"`
	Who      string    `json:"who,omitempty"` // the technician concerned
	Note     string    `json:"note,omitempty"`
	// A receivable reminder's sale, what it still owes and for how many days.
	SaleID  string `json:"sale_id,omitempty"`
	OwedFen int64  `json:"owed_fen,omitempty"`
	Days    int64  `json:"days,omitempty"`
}

var deadlineZh = map[string]string{"response": "响应", "arrival": "到场"}

// AlertText is a message in lang (zh or en): one line, short enough for a text message (at
// most 70 characters in Chinese for the fixed part; the ticket number and a name added).
func AlertText(f AlertFacts, lang string, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	due := ""
	if !f.DueAt.IsZero() {
		due = f.DueAt.In(loc).Format("01-02 15:04")
	}
	n := f.Number
	if lang == "zh" {
		switch f.Kind {
		case AlertDeadlineWarning:
			return fmt.Sprintf("【提醒】工单%s将于%s到%s时限，尚未完成", n, due, deadlineZh[f.Deadline])
		case AlertDeadlineMissed:
			return fmt.Sprintf("【超时】工单%s已超%s时限（%s）", n, deadlineZh[f.Deadline], due)
		case AlertDispatched:
			return fmt.Sprintf("【派单】工单%s（%s）已派给您，客户：%s", n, UrgencyLabels[f.Urgency].Zh, f.Customer)
		case AlertEscalated:
			return fmt.Sprintf("【升级】工单%s已升级，请安排人员", n)
		case AlertReportWaiting:
			return fmt.Sprintf("【待核实】%s报修工单%s，请核实", f.Who, n)
		case AlertComplaint:
			return fmt.Sprintf("【投诉】工单%s收到投诉，请调查", n)
		case AlertSheetReturned:
			return fmt.Sprintf("【退回】工单%s的服务单被退回：%s", n, f.Note)
		case AlertReceivableAging:
			return fmt.Sprintf("【催收】%s的销售单%s欠款%s元已逾%d天，经办人：%s", f.Customer, shortID(f.SaleID), Yuan(f.OwedFen), f.Days, f.Who)
		}
		return f.Kind + " " + n
	}
	switch f.Kind {
	case AlertDeadlineWarning:
		return fmt.Sprintf("Ticket %s: %s deadline at %s, not met yet", n, f.Deadline, due)
	case AlertDeadlineMissed:
		return fmt.Sprintf("Ticket %s missed its %s deadline (%s)", n, f.Deadline, due)
	case AlertDispatched:
		return fmt.Sprintf("Ticket %s (%s) dispatched to you; customer %s", n, UrgencyLabels[f.Urgency].En, f.Customer)
	case AlertEscalated:
		return fmt.Sprintf("Ticket %s escalated: please staff it", n)
	case AlertReportWaiting:
		return fmt.Sprintf("%s reported ticket %s: please verify", f.Who, n)
	case AlertComplaint:
		return fmt.Sprintf("Complaint on ticket %s: please investigate", n)
	case AlertSheetReturned:
		return fmt.Sprintf("Sheet of ticket %s returned: %s", n, f.Note)
	case AlertReceivableAging:
		return fmt.Sprintf("Sale %s to %s: %s yuan owed for over %d days; handler %s", shortID(f.SaleID), f.Customer, Yuan(f.OwedFen), f.Days, f.Who)
	}
	return f.Kind + " " + n
}

// AlertMessage is the message in lang: zh, en, or both (Chinese first, one line each).
func AlertMessage(f AlertFacts, lang string, loc *time.Location) string {
	switch lang {
	case "zh", "en":
		return AlertText(f, lang, loc)
	}
	return AlertText(f, "zh", loc) + "\n" + AlertText(f, "en", loc)
}

// shortID is the first 8 characters of a record id, enough to find it in a list.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Yuan writes an amount in fen as yuan with two decimals ("1234.50", "-0.50") in integer
// arithmetic, so no rounding can creep in; every screen, PDF, CSV and message uses it.
func Yuan(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign = "-"
		u = uint64(-(fen + 1)) + 1 // safe for math.MinInt64
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}
