package schema

import (
	"testing"
	"time"
)

func TestParseMonth(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 11, 30, 16, 30, 0, 0, time.UTC) // 1 December 00:30 in Shanghai
	for _, tc := range []struct {
		month string
		ok    bool
	}{
		{"2026-11", true}, {"2026-12", true}, // December has begun in Shanghai
		{"2027-01", false}, {"2026-13", false}, {"2026-00", false}, {"2026-1", false}, {"26-11", false},
		{"2026/11", false}, {"+026-11", false}, {"1999-12", false}, {"", false},
	} {
		start, end, err := ParseMonth(tc.month, sh, now)
		if tc.ok != (err == nil) {
			t.Errorf("%q: err %v, want ok=%v", tc.month, err, tc.ok)
			continue
		}
		if err != nil {
			if se, _ := AsError(err); se == nil || se.Field != "month" || se.Code != CodeValidation {
				t.Errorf("%q: %v, want a validation error naming month", tc.month, err)
			}
			continue
		}
		if start.In(sh).Day() != 1 || start.In(sh).Hour() != 0 || !end.Equal(start.AddDate(0, 1, 0)) {
			t.Errorf("%q: bounds %v - %v", tc.month, start, end)
		}
	}
	if MonthOf(now, sh) != "2026-12" || MonthOf(now, nil) != "2026-11" {
		t.Errorf("MonthOf: %s in Shanghai, %s in UTC", MonthOf(now, sh), MonthOf(now, nil))
	}
	if NextMonth("2026-12") != "2027-01" {
		t.Errorf("NextMonth(2026-12) = %s", NextMonth("2026-12"))
	}
}

// TestMonthBoundariesInCompanyTime: months are cut in the company's time zone, so a service
// at 00:30 on 1 December Shanghai time belongs to December though it is 30 November in UTC.
func TestMonthBoundariesInCompanyTime(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 30, 16, 30, 0, 0, time.UTC), "2026-12"}, // 00:30 on 1 Dec in Shanghai
		{time.Date(2026, 11, 30, 15, 30, 0, 0, time.UTC), "2026-11"}, // 23:30 on 30 Nov in Shanghai
		{time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC), "2027-01"},  // New Year in Shanghai
		{time.Date(2026, 12, 31, 15, 59, 59, 0, time.UTC), "2026-12"},
	} {
		if got := MonthOf(tc.at, sh); got != tc.want {
			t.Errorf("MonthOf(%v) = %s, want %s", tc.at, got, tc.want)
		}
	}
	for _, tc := range []struct {
		month      string
		start, end time.Time
	}{
		{"2026-11", time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC)},
		{"2028-02", time.Date(2028, 1, 31, 16, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 16, 0, 0, 0, time.UTC)},
	} {
		start, end, err := ParseMonth(tc.month, sh, time.Time{})
		if err != nil || !start.Equal(tc.start) || !end.Equal(tc.end) {
			t.Errorf("ParseMonth(%s) = [%v, %v) %v, want [%v, %v)", tc.month, start.UTC(), end.UTC(), err, tc.start, tc.end)
		}
	}
}

func TestMonthSteps(t *testing.T) {
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	actor := func(role string) Actor { return Actor{UserID: "u-" + role, Role: role, Name: role + " name"} }
	month := func(status string) Doc {
		if status == "" {
			return nil
		}
		return Doc{"id": "2026-11", "month": "2026-11", "status": status, "trail": []any{}}
	}
	for _, tc := range []struct {
		role, status, action, comment string
		code, to                      string
	}{
		{RoleManager, MonthDraft, MonthReview, "", "", MonthReviewed},
		{RoleManager, MonthDraft, MonthReturn, "请核对", "", MonthDraft},
		{RoleManager, MonthDraft, MonthReturn, "  ", CodeValidation, ""},
		{RoleManager, MonthReviewed, MonthReturn, "撤回", "", MonthDraft},
		{RoleLeader, MonthReviewed, MonthReturn, "数字不对", "", MonthDraft},
		{RoleLeader, MonthDraft, MonthReturn, "数字不对", CodeInvalidTransition, ""},
		{RoleLeader, MonthReviewed, MonthApprove, "", "", MonthApproved},
		{RoleLeader, MonthDraft, MonthApprove, "", CodeInvalidTransition, ""}, // never reviewed
		{RoleLeader, "", MonthApprove, "", CodeInvalidTransition, ""},         // never compiled
		{RoleManager, MonthReviewed, MonthReview, "", CodeInvalidTransition, ""},
		{RoleManager, MonthApproved, MonthReturn, "晚了", CodeInvalidTransition, ""},
		{RoleLeader, MonthApproved, MonthApprove, "", CodeInvalidTransition, ""},
		{RoleManager, MonthReviewed, MonthApprove, "", CodeForbidden, ""},
		{RoleLeader, MonthDraft, MonthReview, "", CodeForbidden, ""},
		{RoleCoordinator, MonthDraft, MonthReview, "", CodeForbidden, ""},
		{RoleAdmin, MonthReviewed, MonthApprove, "", CodeForbidden, ""},
		{RoleTechnician, MonthDraft, MonthReview, "", CodeForbidden, ""},
		{RoleManager, MonthDraft, "publish", "", CodeValidation, ""},
	} {
		name := tc.role + " " + tc.action + " " + tc.status
		next, err := MonthStep(actor(tc.role), "2026-11", month(tc.status), tc.action, tc.comment, now)
		if tc.code != "" {
			if ErrorCode(err) != tc.code {
				t.Errorf("%s: err %v, want %s", name, err, tc.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		trail := next["trail"].([]any)
		step := trail[len(trail)-1].(map[string]any)
		if next.Str("status") != tc.to || step["step"] != tc.action || step["by"] != "u-"+tc.role || step["by_name"] != tc.role+" name" ||
			step["at"] != "2026-12-01T02:00:00.000Z" || step["comment"] != tc.comment {
			t.Errorf("%s: status %s, step %v", name, next.Str("status"), step)
		}
	}
}

func TestCanCompile(t *testing.T) {
	coord := Actor{UserID: "c", Role: RoleCoordinator}
	for _, tc := range []struct {
		actor  Actor
		status string
		code   string
	}{
		{coord, "", ""}, {coord, MonthDraft, ""}, {Actor{Role: RoleAdmin}, MonthDraft, ""},
		{coord, MonthReviewed, CodeInvalidTransition}, {coord, MonthApproved, CodeInvalidTransition},
		{Actor{Role: RoleManager}, "", CodeForbidden}, {Actor{Role: RoleLeader}, "", CodeForbidden}, {Actor{Role: RoleTechnician}, "", CodeForbidden},
	} {
		var cur Doc
		if tc.status != "" {
			cur = Doc{"status": tc.status}
		}
		err := CanCompile(tc.actor, "2026-11", cur)
		if (tc.code == "" && err != nil) || (tc.code != "" && ErrorCode(err) != tc.code) {
			t.Errorf("%s compiles a %q month: %v, want %q", tc.actor.Role, tc.status, err, tc.code)
		}
	}
}
