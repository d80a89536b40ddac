package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// `fieldsync report month … -o month.xlsx` writes the workbook (a preview of a month nobody
// compiled); another extension is refused and writes nothing.
func TestReportMonthXLSX(t *testing.T) {
	data := t.TempDir()
	if out, code := run(t, "", "migrate", "--data", data); code != 0 {
		t.Fatalf("migrate: %d %s", code, out)
	}
	if out, code := run(t, "s3cret-pass\n", "user", "add", "--data", data, "--username", "zhang", "--name", "张伟", "--role", "technician", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %d %s", code, out)
	}
	path := filepath.Join(t.TempDir(), "month.xlsx")
	if out, code := run(t, "", "report", "month", "2026-10", "--data", data, "--lang", "en", "-o", path); code != 0 || !strings.Contains(out, "wrote") {
		t.Fatalf("report: %d %s", code, out)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{"Statistics", "Pay lines", "Sales", "Receivables", "Expenses"}) {
		t.Fatalf("sheets %q", got)
	}
	rows, _ := f.GetRows("Statistics")
	if len(rows) != 3 || rows[1][1] != "张伟" || !slices.Contains(rows[0], "Base salary (yuan)") {
		t.Fatalf("statistics %q", rows)
	}
	bad := filepath.Join(t.TempDir(), "month.ods")
	if out, code := run(t, "", "report", "month", "2026-10", "--data", data, "-o", bad); code == 0 || !strings.Contains(out, "FILE.xlsx") {
		t.Errorf("an .ods: %d %s", code, out)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("a refused report wrote a file")
	}
}
