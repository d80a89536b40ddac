package schema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EntMonthReport is the month-end statistics table of one calendar month (P8), id "2026-11".
// Nobody creates or edits it field by field: only the month-end steps of package sync write
// it (compile, review, return, approve), so its figures always come from the records.
const EntMonthReport = "month_report"

// Month report statuses. A returned month goes back to draft with the manager's comment in
// its trail; an approved month is locked for good.
const (
	MonthDraft    = "draft"
	MonthReviewed = "reviewed"
	MonthApproved = "approved"
)

// MonthStatuses lists the month report statuses in workflow order.
var MonthStatuses = []string{MonthDraft, MonthReviewed, MonthApproved}

// Month-end steps, as they appear in a month report's trail.
const (
	MonthCompile = "compile"
	MonthReview  = "review"
	MonthReturn  = "return"
	MonthApprove = "approve"
)

// MonthActions are the steps taken on a compiled month (compile has its own endpoint).
var MonthActions = []string{MonthReview, MonthReturn, MonthApprove}

func init() {
	register(&Entity{Name: EntMonthReport, Fields: []Field{
		{Name: "month", Kind: KString},
		{Name: "status", Kind: KEnum, Enum: MonthStatuses},
		{Name: "rows", Kind: KJSON},
		{Name: "totals", Kind: KJSON},
		{Name: "warnings", Kind: KJSON},
		// What the month took in, so an approved month can say which records it settled:
		// every sheet and complaint it listed, and those that counted.
		{Name: "sheet_ids", Kind: KJSON},
		{Name: "counted_sheet_ids", Kind: KJSON},
		{Name: "complaint_ids", Kind: KJSON},
		{Name: "upheld_complaint_ids", Kind: KJSON},
		// The money the month settled: "commission:<sale>", "expense:<id>", "liability:<sale>".
		{Name: "money_ids", Kind: KJSON},
		{Name: "trail", Kind: KJSON}, // [{step, by, by_name, at, comment}]
		{Name: "compiled_at", Kind: KTime},
		{Name: "compiled_by", Kind: KRef, Ref: EntUser},
		{Name: "reviewed_at", Kind: KTime},
		{Name: "reviewed_by", Kind: KRef, Ref: EntUser},
		{Name: "approved_at", Kind: KTime},
		{Name: "approved_by", Kind: KRef, Ref: EntUser},
	}})
}

// ParseMonth checks a month "YYYY-MM" and returns its half-open bounds [start, end) in the
// company's time zone. A malformed month, or one that has not begun at now, is a validation
// error naming the field "month". The current month may be compiled (on its last day).
func ParseMonth(month string, loc *time.Location, now time.Time) (start, end time.Time, err error) {
	bad := func(format string, args ...any) error {
		return FieldError(CodeValidation, "month", format, args...)
	}
	if loc == nil {
		loc = time.UTC
	}
	if len(month) != 7 || month[4] != '-' || !allDigits(month[:4]) || !allDigits(month[5:]) {
		return start, end, bad("month %q is not of the form YYYY-MM, e.g. 2026-11", month)
	}
	year, _ := strconv.Atoi(month[:4])
	mon, _ := strconv.Atoi(month[5:])
	if year < 2000 {
		return start, end, bad("month %q: year %d is out of range", month, year)
	}
	if mon < 1 || mon > 12 {
		return start, end, bad("month %q: month %02d is out of range 01-12", month, mon)
	}
	start = time.Date(year, time.Month(mon), 1, 0, 0, 0, 0, loc)
	end = start.AddDate(0, 1, 0)
	if !now.IsZero() && now.Before(start) {
		return time.Time{}, time.Time{}, bad("month %s is in the future (today is %s)", month, now.In(loc).Format(time.DateOnly))
	}
	return start, end, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// MonthOf returns the month "YYYY-MM" t falls in, in the company's time zone.
func MonthOf(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01")
}

// NextMonth returns the month after "YYYY-MM" (the month must be well formed).
func NextMonth(month string) string {
	t, err := time.Parse("2006-01", month)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 1, 0).Format("2006-01")
}

// TrailStep is one entry of a month report's trail: who took which step when, and why.
func TrailStep(step string, actor Actor, at time.Time, comment string) map[string]any {
	return map[string]any{"step": step, "by": actor.UserID, "by_name": actor.Name, "at": Stamp(at), "comment": comment}
}

// CanCompile decides whether actor may compile a month whose report is cur (nil when the
// month was never compiled): coordinators and admins compile; a draft (returned or not) is
// replaced; a reviewed month must be returned first; an approved month never changes.
func CanCompile(actor Actor, month string, cur Doc) error {
	if actor.Role != RoleCoordinator && actor.Role != RoleAdmin {
		return Errorf(CodeForbidden, "a %s may not compile a month (coordinator, admin)", actor.Role)
	}
	if cur == nil {
		return nil
	}
	switch cur.Str("status") {
	case MonthApproved:
		return &Error{Code: CodeInvalidTransition, Record: cur,
			Message: fmt.Sprintf("month %s is approved and locked: it cannot be compiled again; later sheets and complaints go into the next open month", month)}
	case MonthReviewed:
		return &Error{Code: CodeInvalidTransition, Record: cur,
			Message: fmt.Sprintf("month %s was reviewed: the manager must return it before it can be compiled again", month)}
	}
	return nil
}

// MonthStep applies a review, return or approve step to the month report cur (nil when the
// month was never compiled) and returns the next state with the step added to its trail.
// The manager reviews a draft or returns it with a comment (back to draft, to be compiled
// again); the leader approves a reviewed month or returns it with a comment; an approved
// month takes no step.
func MonthStep(actor Actor, month string, cur Doc, action, comment string, now time.Time) (Doc, error) {
	type rule struct {
		from  []string
		roles []string
		to    string
	}
	rules := map[string]rule{
		MonthReview:  {[]string{MonthDraft}, []string{RoleManager}, MonthReviewed},
		MonthReturn:  {[]string{MonthDraft, MonthReviewed}, []string{RoleManager, RoleLeader}, MonthDraft},
		MonthApprove: {[]string{MonthReviewed}, []string{RoleLeader}, MonthApproved},
	}
	r, ok := rules[action]
	if !ok {
		return nil, FieldError(CodeValidation, "action", "unknown month action %q (one of %s)", action, strings.Join(MonthActions, ", "))
	}
	if !slices.Contains(r.roles, actor.Role) {
		return nil, Errorf(CodeForbidden, "a %s may not %s a month (%s)", actor.Role, action, strings.Join(r.roles, ", "))
	}
	comment = strings.TrimSpace(comment)
	if action == MonthReturn && comment == "" {
		return nil, FieldError(CodeValidation, "comment", "returning a month needs a comment saying what to correct")
	}
	if cur == nil {
		return nil, Errorf(CodeInvalidTransition, "month %s has not been compiled: compile it before you %s it", month, action)
	}
	st := cur.Str("status")
	if !slices.Contains(r.from, st) {
		msg := fmt.Sprintf("month %s is %s: %s needs a month that is %s", month, st, action, strings.Join(r.from, " or "))
		switch {
		case st == MonthApproved:
			msg = fmt.Sprintf("month %s is approved and locked: it takes no more steps", month)
		case action == MonthApprove:
			msg = fmt.Sprintf("month %s is %s: the manager must review it before it is approved", month, st)
		case action == MonthReturn && actor.Role == RoleLeader && st == MonthDraft:
			msg = fmt.Sprintf("month %s is a draft: the manager returns drafts; a leader returns a reviewed month", month)
		}
		return nil, &Error{Code: CodeInvalidTransition, Record: cur, Message: msg}
	}
	if action == MonthReturn && actor.Role == RoleLeader && st != MonthReviewed {
		return nil, &Error{Code: CodeInvalidTransition, Record: cur, Message: fmt.Sprintf("month %s is a draft: the manager returns drafts; a leader returns a reviewed month", month)}
	}
	next := cur.Clone()
	next["status"] = r.to
	trail, _ := cur["trail"].([]any)
	next["trail"] = append(append([]any{}, trail...), TrailStep(action, actor, now, comment))
	switch action {
	case MonthReview:
		next["reviewed_at"], next["reviewed_by"] = Stamp(now), actor.UserID
	case MonthReturn:
		next["reviewed_at"], next["reviewed_by"] = nil, nil
	case MonthApprove:
		next["approved_at"], next["approved_by"] = Stamp(now), actor.UserID
	}
	return next, nil
}
