package sync

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"fieldsync/schema"
)

// outboxOf lists the outbox messages of kind: "channel target text".
func outboxOf(t *testing.T, e *Engine, kind string) []string {
	t.Helper()
	rows, err := e.db.R.Query(`SELECT channel, target, text FROM outbox WHERE kind = ? ORDER BY id`, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ch, target, text string
		if err := rows.Scan(&ch, &target, &text); err != nil {
			t.Fatal(err)
		}
		out = append(out, ch+" "+target+" "+text)
	}
	return out
}

// The handler of a debt is reminded when it enters each ageing bucket (31, 91, 181, 365
// days), once per threshold however often the watcher looks; a paid debt is not.
func TestReceivableRemindersOncePerThreshold(t *testing.T) {
	m := newMoneyWorld(t)
	ctx := context.Background()
	if err := m.e.PutSettings(ctx, schema.System, map[string]json.RawMessage{"alert_sms_url": schema.MustJSON("http://127.0.0.1:9/sms")}); err != nil {
		t.Fatal(err)
	}
	put(t, m.e, schema.EntUser, schema.Doc{"id": "tech", "name": "张伟", "role": "technician", "dedicated": true, "active": true, "phone": "13900000003"})
	for _, id := range []string{"s1", "s2"} {
		m.sale(id, 10000)
		m.ok(m.do(m.tech, schema.EntApproval, "c"+id, "create", "", map[string]any{"kind": "credit", "amount_fen": 10000, "sale_id": id, "reason": "r"}))
		m.ok(m.do(m.mgr, schema.EntApproval, "c"+id, "action", "approve", nil))
		m.ok(m.do(m.com, schema.EntSale, id, "action", "ship", map[string]any{"credit_approval_id": "c" + id}))
	}
	m.ok(m.do(m.com, schema.EntSale, "s1", "action", "pay", map[string]any{"amount_fen": 2500}))
	shipped := *m.now
	watch := func(days int, want int) {
		t.Helper()
		*m.now = shipped.Add(time.Duration(days)*24*time.Hour + time.Hour)
		for range 2 { // a second look finds nothing new
			n, err := m.e.WatchReceivables(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Fatalf("day %d: %d reminders, want %d", days, n, want)
			}
			want = 0
		}
	}
	watch(30, 0)
	watch(31, 2)
	watch(90, 0)
	m.ok(m.do(m.com, schema.EntSale, "s2", "action", "pay", map[string]any{"amount_fen": 10000})) // s2 is paid
	watch(200, 1)                                                                                 // s1 crossed 91 and 181 since: one reminder, at 181
	watch(364, 0)
	watch(365, 1)
	watch(800, 0)

	msgs := outboxOf(t, m.e, schema.AlertReceivableAging)
	if len(msgs) != 4 {
		t.Fatalf("outbox %q", msgs)
	}
	for i, days := range []string{"31", "31", "181", "365"} {
		if !strings.HasPrefix(msgs[i], "sms 13900000003 【催收】华东精密") || !strings.Contains(msgs[i], "已逾"+days+"天") {
			t.Fatalf("message %d: %q, want an SMS to the handler at %s days", i, msgs[i], days)
		}
	}
	if !strings.Contains(msgs[3], "欠款75.00元") {
		t.Fatalf("message %q, want the 75.00 yuan still owed", msgs[3])
	}
	s1, _ := m.e.Get(ctx, schema.EntSale, "s1")
	if s1.Int("reminded_days") != 365 {
		t.Fatalf("reminded_days %d", s1.Int("reminded_days"))
	}
}
