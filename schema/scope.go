package schema

import "time"

// TicketHolders returns the technicians whose devices hold ticket t at now: its assignee
// while the work is open and for keepDays after it was completed or cancelled, and the
// technician who reported it while it waits for verification.
func TicketHolders(t Doc, now time.Time, keepDays int64) []string {
	var out []string
	if a := t.Str("assignee_id"); a != "" {
		st := t.Str("status")
		end := t.Time("completed_at")
		if st == StCancelled {
			end = t.Time("cancelled_at")
		}
		if end.IsZero() || now.Sub(end) < time.Duration(keepDays)*24*time.Hour {
			out = append(out, a)
		}
	}
	if t.Str("status") == StReported {
		if r := t.Str("reported_by"); r != "" && (len(out) == 0 || out[0] != r) {
			out = append(out, r)
		}
	}
	return out
}

// TicketRefs lists the records a ticket references that a device holding it needs.
func TicketRefs(t Doc) [][2]string {
	var out [][2]string
	for _, r := range [][2]string{{EntCustomer, "customer_id"}, {EntSite, "site_id"}, {EntAsset, "asset_id"}} {
		if id := t.Str(r[1]); id != "" {
			out = append(out, [2]string{r[0], id})
		}
	}
	return out
}

// ChildEntities are the records that belong to a ticket and travel with it into a scope.
var ChildEntities = []string{EntTicketEvent, EntSheet}
