package e2e

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"fieldsync/sync/client"
)

// TestPhoneSaleAndExpense: tech1's phone records a parts sale, a bus fare and a taxi request
// offline; the manager approves the taxi on the office API, the phone records the taxi fare
// against it; commerce adds the cost and collects the payment, the manager reimburses; the
// month compiled by the coordinator shows the commission and the expenses with their ids.
func TestPhoneSaleAndExpense(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.login("admin")
	var com map[string]any
	e.must("POST", "/api/v1/users", admin, map[string]any{"username": "commerce1", "name": "孙丽 商务部", "role": "commerce", "password": demoPassword}, 201, &com)
	commerce := e.login("commerce1")
	manager := e.login("manager")

	// The ticket brings its customer to tech1's phone.
	id := e.newTicket("money: drive failing")
	e.dispatch(id, "tech1")
	c, _ := e.newClient("tech1", "money-phone", clientOpts{})
	syncNow(t, c)

	// Offline.
	sale, bus, taxiReq := client.NewID(), client.NewID(), client.NewID()
	mutate(t, c, "sale", sale, "create", 0, map[string]any{"kind": "parts", "customer_id": e.cust, "ticket_id": id,
		"lines": []any{map[string]any{"item": "硬盘 2TB drive", "qty": 2, "price_fen": 50000}}}, "")
	mutate(t, c, "expense", bus, "create", 0, map[string]any{"kind": "public_transport", "amount_fen": 600}, "")
	mutate(t, c, "approval", taxiReq, "create", 0, map[string]any{"kind": "taxi", "amount_fen": 5000, "reason": "硬盘太重 the drives are too heavy for the metro"}, "")
	syncNow(t, c)
	if rej, _ := c.Rejections(); len(rej) > 0 {
		t.Fatalf("rejections: %+v", rej)
	}

	// The manager's queue holds the request; the manager approves it.
	var queue struct{ Items []map[string]any }
	e.must("GET", "/api/v1/approvals?status=pending&decider_role=manager", manager, nil, 200, &queue)
	if len(queue.Items) != 1 || queue.Items[0]["id"] != taxiReq {
		t.Fatalf("manager's queue %v", queue.Items)
	}
	e.must("POST", "/api/v1/approvals/"+taxiReq+"/actions/approve", manager, map[string]any{"note": "同意"}, 200, nil)
	syncNow(t, c)
	if r, ok, _ := c.Record("approval", taxiReq); !ok || !strings.Contains(string(r.Data), `"status":"approved"`) {
		t.Fatalf("the phone's approval %v %s", ok, r.Data)
	}
	taxi := client.NewID()
	receipt, err := c.PutBlob(stampPNG(t)) // the photo of the taxi receipt
	if err != nil {
		t.Fatal(err)
	}
	mutate(t, c, "expense", taxi, "create", 0, map[string]any{"kind": "taxi", "amount_fen": 4500, "approval_id": taxiReq, "receipt_blob": receipt}, "")
	syncNow(t, c)
	if rej, _ := c.Rejections(); len(rej) > 0 {
		t.Fatalf("rejections: %+v", rej)
	}

	// The office: a payment larger than owed is refused; the cost, the payment, shipping.
	st, raw := e.do("POST", "/api/v1/sales/"+sale+"/actions/pay", commerce, map[string]any{"amount_fen": 100001})
	if st != 422 && st != 400 {
		t.Fatalf("overpayment: %d %s", st, raw)
	}
	var ex map[string]any
	e.must("GET", "/api/v1/expenses/"+taxi, manager, nil, 200, &ex)
	if ex["receipt_blob"] != receipt || ex["approval_id"] != taxiReq {
		t.Fatalf("the taxi expense on the server %v", ex)
	}
	var s map[string]any
	e.must("GET", "/api/v1/sales/"+sale, commerce, nil, 200, &s)
	if st, raw := e.do("PATCH", "/api/v1/sales/"+sale, commerce, map[string]any{"cost_fen": 60000}, "If-Match", fmt.Sprint(s["version"])); st != 200 {
		t.Fatalf("adding the cost: %d %s", st, raw)
	}
	e.must("POST", "/api/v1/sales/"+sale+"/actions/pay", commerce, map[string]any{"amount_fen": 100000}, 200, nil)
	e.must("POST", "/api/v1/sales/"+sale+"/actions/ship", commerce, nil, 200, nil)
	for _, x := range []string{bus, taxi} {
		e.must("POST", "/api/v1/expenses/"+x+"/actions/reimburse", manager, nil, 200, nil)
	}
	var recv map[string]any
	e.must("GET", "/api/v1/receivables", commerce, nil, 200, &recv)
	if fmt.Sprint(recv["owed_fen"]) != "0" {
		t.Fatalf("receivables after payment %v", recv)
	}

	month := e.srv.Engine.Now().In(e.srv.Engine.Settings().Location()).Format("2006-01")
	var rep map[string]any
	e.must("POST", "/api/v1/months/"+month+"/compile", e.coord, nil, 200, &rep)
	var row map[string]any
	for _, r := range rep["rows"].([]any) {
		if m := r.(map[string]any); m["technician"].(map[string]any)["id"] == e.users["tech1"] {
			row = m
		}
	}
	// (100000 − 60000) × 30% = 12000; expenses 600 + 4500 apart from pay.
	if fmt.Sprint(row["commission_fen"]) != "12000" || fmt.Sprint(row["expenses_fen"]) != "5100" {
		t.Fatalf("tech1's row: commission %v expenses %v", row["commission_fen"], row["expenses_fen"])
	}
	ids := fmt.Sprint(rep["money_ids"])
	for _, want := range []string{"commission:" + sale, "expense:" + bus, "expense:" + taxi} {
		if !contains(rep["money_ids"], want) {
			t.Errorf("money_ids %s lack %s", ids, want)
		}
	}

	// The manager reviews, leadership approves; the approved month's XLSX opens and its
	// totals equal the CSV's and the PDF's.
	e.must("POST", "/api/v1/months/"+month+"/actions/review", manager, nil, 200, nil)
	e.must("POST", "/api/v1/months/"+month+"/actions/approve", e.login("leader"), nil, 200, nil)
	_, csvRaw := e.do("GET", "/api/v1/months/"+month+"/report.csv?lang=en", manager, nil)
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(csvRaw, []byte("\uFEFF")))).ReadAll()
	if err != nil || len(recs) < 3 {
		t.Fatalf("CSV %v: %s", err, csvRaw)
	}
	st, xlsxRaw := e.do("GET", "/api/v1/months/"+month+"/report.xlsx?lang=en", manager, nil)
	if st != 200 {
		t.Fatalf("xlsx: %d %s", st, xlsxRaw)
	}
	book, err := excelize.OpenReader(bytes.NewReader(xlsxRaw))
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	stats, err := book.GetRows("Statistics")
	if err != nil {
		t.Fatal(err)
	}
	totalsAt := func(rows [][]string) []string {
		for _, r := range rows {
			if len(r) > 1 && r[1] == "Total" {
				return r
			}
		}
		t.Fatalf("no totals line in %q", rows)
		return nil
	}
	csvTot, xlsxTot := totalsAt(recs), totalsAt(stats)
	_, pdfRaw := e.do("GET", "/api/v1/months/"+month+"/report.pdf?lang=en", manager, nil)
	text := pdfToText(t, pdfRaw)
	for _, name := range []string{"Total (yuan)", "Commissions (yuan)", "Expenses reimbursed (yuan)", "Base salary (yuan)"} {
		i := slices.Index(recs[0], name)
		if i < 0 || i >= len(xlsxTot) || csvTot[i] != xlsxTot[i] {
			t.Fatalf("%s: CSV %q, XLSX %q", name, csvTot, xlsxTot)
		}
		if !strings.Contains(text, "¥"+csvTot[i]) {
			t.Errorf("the PDF lacks the %s total ¥%s", name, csvTot[i])
		}
	}
	if i := slices.Index(recs[0], "Commissions (yuan)"); csvTot[i] != "120.00" {
		t.Errorf("commissions total %q, want 120.00", csvTot[i])
	}
}

// pdfToText runs poppler's pdftotext on a PDF.
func pdfToText(t *testing.T, pdf []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "month.pdf")
	if err := os.WriteFile(path, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-raw", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v %s", err, out)
	}
	return string(out)
}

func contains(list any, s string) bool {
	l, _ := list.([]any)
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
