package reports

import (
	"bytes"
	"encoding/csv"
	"math"
	"reflect"
	"strings"
	"testing"

	"fieldsync/schema"
)

func TestYuan(t *testing.T) {
	tests := []struct {
		fen  int64
		want string
	}{
		{0, "0.00"},
		{5, "0.05"},
		{15000, "150.00"},
		{123456, "1234.56"},
		{-5000, "-50.00"},
		{-50, "-0.50"},
		{math.MinInt64, "-92233720368547758.08"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := schema.Yuan(tc.fen); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// readMonthCSV checks the BOM Excel needs and parses the rest back, as a
// spreadsheet would.
func readMonthCSV(t *testing.T, data []byte) [][]string {
	t.Helper()
	rest, ok := bytes.CutPrefix(data, []byte("\xEF\xBB\xBF"))
	if !ok {
		t.Fatalf("no UTF-8 BOM at the start: % x", data[:min(3, len(data))])
	}
	records, err := csv.NewReader(bytes.NewReader(rest)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return records
}

func TestWriteMonthCSV(t *testing.T) {
	in := MonthInput{
		Month: "2026-11", Settings: testSettings(t),
		Technicians: []Technician{
			{ID: "t1", Name: "张伟", Dedicated: true},
			{ID: "t2", Name: `欧阳, "小明"`, Dedicated: true},
			{ID: "t3", Name: "=HYPERLINK(1)"},
		},
		Sheets:     append(sheets("t1", 3), goodSheet("v", "t3", ModeOnsite)),
		Complaints: complaints("t2", ComplaintUpheld, 1),
	}
	var buf bytes.Buffer
	if err := WriteMonthCSV(&buf, ComputeMonth(in), ""); err != nil {
		t.Fatal(err)
	}
	records := readMonthCSV(t, buf.Bytes())

	header := records[0]
	if got, want := header[1], "技术员 / Technician"; got != want {
		t.Errorf("header: got %q, want %q", got, want)
	}
	col := make(map[string]int)
	for i, h := range header {
		_, en, _ := strings.Cut(h, " / ")
		col[en] = i
	}
	type line struct{ id, name, counted, complaints, allowance, bonus, labour, total string }
	lineOf := func(rec []string) line {
		return line{
			rec[col["Technician ID"]], rec[col["Technician"]], rec[col["Counted services"]], rec[col["Upheld complaints"]],
			rec[col["Allowance (yuan)"]], rec[col["Bonus (yuan)"]], rec[col["Labour (yuan)"]], rec[col["Total (yuan)"]],
		}
	}
	var got []line
	for _, rec := range records[1:] {
		got = append(got, lineOf(rec))
	}
	// Sorted by name in byte order: "=" before CJK, 张 U+5F20 before 欧 U+6B27.
	// t1: 3 × 50 + 200 = 350; t2: −50; t3: one on-site visit × 80.
	want := []line{
		{"t3", "'=HYPERLINK(1)", "1", "0", "0.00", "0.00", "80.00", "80.00"},
		{"t1", "张伟", "3", "0", "150.00", "200.00", "0.00", "350.00"},
		{"t2", `欧阳, "小明"`, "0", "1", "0.00", "-50.00", "0.00", "-50.00"},
		{"", "合计 / Total", "4", "1", "150.00", "150.00", "80.00", "380.00"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	for i, rec := range records {
		if len(rec) != len(header) {
			t.Errorf("record %d has %d fields, want %d", i, len(rec), len(header))
		}
	}
}

func TestWriteMonthCSVLanguages(t *testing.T) {
	res := ComputeMonth(MonthInput{
		Month: "2026-11", Settings: testSettings(t),
		Technicians: []Technician{{ID: "t1", Name: "张伟", Dedicated: true}},
	})
	tests := []struct {
		lang                    string
		wantHeader, wantDedicat string
	}{
		{"zh", "技术员", "是"},
		{"en", "Technician", "yes"},
		{"", "技术员 / Technician", "是 / yes"},
	}
	for _, tc := range tests {
		t.Run("lang="+tc.lang, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteMonthCSV(&buf, res, tc.lang); err != nil {
				t.Fatal(err)
			}
			records := readMonthCSV(t, buf.Bytes())
			if got := records[0][1]; got != tc.wantHeader {
				t.Errorf("header: got %q, want %q", got, tc.wantHeader)
			}
			if got := records[1][2]; got != tc.wantDedicat {
				t.Errorf("dedicated: got %q, want %q", got, tc.wantDedicat)
			}
		})
	}
}

// TestMonthCSVTextGuardsEveryFormulaStart checks each character a spreadsheet
// may take as the start of a formula (OWASP's list: = + - @, tab and carriage
// return), and that other text is left alone.
func TestMonthCSVTextGuardsEveryFormulaStart(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1+1", "'\t=1+1"},
		{"\r=1+1", "'\r=1+1"},
		{"张伟", "张伟"},
		{"Zhang =1", "Zhang =1"},
		{"", ""},
	} {
		if got := monthCSVText(tc.in); got != tc.want {
			t.Errorf("monthCSVText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestWriteMonthCSVWarnings: the warnings follow the totals, one a line, in a file every
// line of which has the table's width.
func TestWriteMonthCSVWarnings(t *testing.T) {
	r := MonthResult{Month: "2026-11", Rows: []Row{{Technician: TechnicianRef{ID: "t1", Name: "张伟"}}},
		Warnings: []string{"工单 SR-1 有 2 张反馈单 / ticket SR-1 has 2 sheets", "=cmd"}}
	var buf bytes.Buffer
	if err := WriteMonthCSV(&buf, r, "en"); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), monthBOM))).ReadAll()
	if err != nil {
		t.Fatalf("not a rectangular CSV: %v", err)
	}
	last := records[len(records)-2:]
	if last[0][0] != "Warning" || last[0][1] != "ticket SR-1 has 2 sheets" || last[1][1] != "'=cmd" {
		t.Errorf("warning lines %q", last)
	}
}
