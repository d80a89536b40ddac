package schema

import (
	"fmt"
	"strings"
	"time"
)

// A workflow step a phone pushes (accept, arrive) carries the phone's clock at the step
// (the mutation's `at`). The ticket keeps it beside the server's stamp, in device_times,
// keyed by the stamp's field, with the phone's clock offset as it last reported it:
//
//	{"accepted_at": {"device_at": "2026-11-10T02:20:40.000Z", "offset_ms": 40000}}
//
// StepTime decides which of the two times the deadlines use.

// DeviceTimedSteps maps the workflow steps whose phone time is kept to their stamp field.
var DeviceTimedSteps = map[string]string{"accept": "accepted_at", "arrive": "arrived_at"}

// DeviceTimeFlag says why a phone time is not credible, in Chinese and English, or "" when it
// is: the phone clock was off the server's by more than tol (offset as the phone last
// reported it; nil when it never did), the time is later than the server's receipt by more
// than tol, or earlier than the ticket's dispatch by more than tol.
func DeviceTimeFlag(field string, at time.Time, offset *time.Duration, received, dispatched time.Time, tol time.Duration) string {
	if offset != nil && (*offset > tol || -*offset > tol) {
		off, dir := *offset, "ahead of"
		if off < 0 {
			dir, off = "behind", -off
		}
		return fmt.Sprintf("手机时钟偏差 %s（容差 %s） / the phone clock was %s %s the server's (tolerance %s)", off.Round(time.Second), tol, off.Round(time.Second), dir, tol)
	}
	if !received.IsZero() && at.Sub(received) > tol {
		return fmt.Sprintf("手机时间 %s 晚于服务器收到的时间 / the phone's %s %s is after the server received it (%s)", field, field, Stamp(at), Stamp(received))
	}
	if !dispatched.IsZero() && dispatched.Sub(at) > tol {
		return fmt.Sprintf("手机时间 %s 早于派单时间 / the phone's %s %s is before the dispatch (%s)", field, field, Stamp(at), Stamp(dispatched))
	}
	return ""
}

// StepTime returns the time a ticket's step (stamp accepted_at or arrived_at) counts at
// for its deadline: the phone's time when the step was pushed by a phone and that time is
// credible (DeviceTimeFlag, tolerance in seconds), otherwise the server's time of receipt,
// with the flag saying why the phone's time was not used. A step not taken is the zero time.
func StepTime(t Doc, stamp string, toleranceSeconds int64) (time.Time, string) {
	server := t.Time(stamp)
	times, _ := t["device_times"].(map[string]any)
	dev, _ := times[stamp].(map[string]any)
	at := Doc(dev).Time("device_at")
	if server.IsZero() || at.IsZero() {
		return server, ""
	}
	var offset *time.Duration
	if v, ok := dev["offset_ms"]; ok && v != nil {
		off := time.Duration(Doc(dev).Int("offset_ms")) * time.Millisecond
		offset = &off
	}
	if f := DeviceTimeFlag(stamp, at, offset, server, t.Time("dispatched_at"), time.Duration(toleranceSeconds)*time.Second); f != "" {
		return server, JoinFlags(f, "按服务器收到的时间计 / the server's time of receipt is used")
	}
	return at, ""
}

// MetDeadlines reports whether a ticket was accepted by its response deadline and (on-site)
// arrived by its arrival deadline, as the month counts them, each step at its StepTime; flag
// joins the reasons a phone time was not used.
func MetDeadlines(t Doc, toleranceSeconds int64) (responded, arrived bool, flag string) {
	var flags []string
	met := func(stamp, dueField string) bool {
		at, f := StepTime(t, stamp, toleranceSeconds)
		if f != "" {
			flags = append(flags, f)
		}
		due := t.Time(dueField)
		return !at.IsZero() && !due.IsZero() && !at.After(due)
	}
	responded = met("accepted_at", "due_response_at")
	arrived = met("arrived_at", "due_arrival_at")
	return responded, arrived, JoinFlags(flags...)
}

// JoinFlags joins flags written "中文 / English" into one such flag, the Chinese parts
// together and the English parts together, so that a report in one language still takes
// its side whole (reports.WarningIn). Empty flags are skipped.
func JoinFlags(flags ...string) string {
	var zh, en []string
	for _, f := range flags {
		if f == "" {
			continue
		}
		z, e, ok := strings.Cut(f, " / ")
		if !ok {
			e = z
		}
		zh, en = append(zh, z), append(en, e)
	}
	if len(zh) == 0 {
		return ""
	}
	return strings.Join(zh, "；") + " / " + strings.Join(en, "; ")
}

// SheetClockFlag checks a sealed sheet's phone times against the tolerance (in seconds): the
// phone clock's offset when it signed, its times (device time, signing, departure, arrival)
// against the server's receipt, and its arrival against its ticket's dispatch.
func SheetClockFlag(sheet, ticket Doc, toleranceSeconds int64) string {
	if sheet.Str("origin") == OriginPaper {
		return "" // typed in from paper: no phone clock is involved
	}
	tol := time.Duration(toleranceSeconds) * time.Second
	if v, ok := sheet["device_clock_offset_ms"]; ok && v != nil {
		off := time.Duration(sheet.Int("device_clock_offset_ms")) * time.Millisecond
		if f := DeviceTimeFlag("", time.Time{}, &off, time.Time{}, time.Time{}, tol); f != "" {
			return f
		}
	}
	rec := sheet.Time("received_at")
	for _, f := range []string{"device_time", "signed_at", "departed_at", "arrived_at"} {
		at := sheet.Time(f)
		if at.IsZero() {
			continue
		}
		var dispatched time.Time
		if f == "arrived_at" {
			dispatched = ticket.Time("dispatched_at")
		}
		if flag := DeviceTimeFlag(f, at, nil, rec, dispatched, tol); flag != "" {
			return flag
		}
	}
	return ""
}
