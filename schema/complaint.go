package schema

import "fmt"

// ComplaintAction decides an open complaint after investigation: uphold (it counts against
// the technician's bonus) or dismiss. Only the department manager (or an admin) decides.
func ComplaintAction(r Reader, actor Actor, cur Doc, action string, params Doc) (Doc, error) {
	if action != "uphold" && action != "dismiss" {
		return nil, FieldError(CodeValidation, "action", "unknown complaint action %q (uphold or dismiss)", action)
	}
	if actor.Role != RoleManager && actor.Role != RoleAdmin {
		return nil, Errorf(CodeForbidden, "a %s may not decide complaints (manager, admin)", actor.Role)
	}
	if cur.Str("status") != "open" {
		return nil, &Error{Code: CodeInvalidTransition, Record: cur, Message: fmt.Sprintf("the complaint was already %s", cur.Str("status"))}
	}
	next := cur.Clone()
	next["status"] = map[string]string{"uphold": "upheld", "dismiss": "dismissed"}[action]
	next["decided_by"] = actor.UserID
	next["decided_at"] = Stamp(r.Now())
	next["decision_note"] = params.Str("note")
	return next, nil
}
