package server

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// customersCSV is n customers with codes; equipmentCSV is three pieces of equipment for each.
func customersCSV(n int) string {
	var b strings.Builder
	b.WriteString("编号 code,名称 name,电话 phone,地址 address\n")
	for i := range n {
		fmt.Fprintf(&b, "K%04d,客户 %d 有限公司,0571-%07d,\"杭州市, %d 号\"\n", i, i, i, i)
	}
	return b.String()
}

func equipmentCSV(n int) string {
	var b strings.Builder
	b.WriteString("serial,model,customer_code,site,site_address,install_date,warranty_until,manufacturer,manufacturer_onsite\n")
	for i := range n {
		for j := range 3 {
			fmt.Fprintf(&b, "SN-%04d-%d,PLC-%d,K%04d,厂区 %d,路 %d 号,2024-01-%02d,2027-01-31,西门子,%s\n", i, j, j, i, j%2, i, j+1, []string{"是", "否", "yes"}[j])
		}
	}
	return b.String()
}

func (e *testEnv) count(token, path string) int {
	e.t.Helper()
	return int(e.must(e.do("GET", path+"?limit=1", token, nil), 200).Body["total"].(float64))
}

func errorsOf(body map[string]any) []map[string]any {
	rep := body
	if r, ok := body["report"].(map[string]any); ok {
		rep = r
	}
	var out []map[string]any
	for _, e := range rep["errors"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func TestImportCustomersAndEquipment(t *testing.T) {
	env := newEnv(t, false)
	tok := env.login("admin", "admin-pass-1")
	custs, equip := customersCSV(1000), equipmentCSV(1000)

	// A bad row (no name) is named by its line; nothing is written, preview or not.
	bad := strings.Replace(custs, "K0500,客户 500 有限公司,", "K0500,,", 1)
	for _, path := range []string{"/api/v1/import/customers", "/api/v1/import/customers?commit=true"} {
		r := env.do("POST", path, tok, []byte(bad))
		errs := errorsOf(r.Body)
		if len(errs) != 1 || errs[0]["line"] != float64(502) || errs[0]["column"] != "name" || !strings.Contains(str(errs[0], "reason"), "name is missing") {
			t.Fatalf("%s: %d %v", path, r.Status, errs)
		}
		if strings.Contains(path, "commit") && r.Status != 400 {
			t.Errorf("a commit of a bad file answered %d", r.Status)
		}
	}
	if n := env.count(tok, "/api/v1/customers"); n != 0 {
		t.Fatalf("a refused file wrote %d customers", n)
	}

	// The preview counts what would happen and writes nothing; the fixed file imports.
	pre := env.must(env.do("POST", "/api/v1/import/customers", tok, []byte(custs)), 200).Body
	if pre["create"] != float64(1000) || pre["written"] != false || len(pre["preview"].([]any)) == 0 {
		t.Fatalf("preview: %v", pre["create"])
	}
	if n := env.count(tok, "/api/v1/customers"); n != 0 {
		t.Fatalf("a preview wrote %d customers", n)
	}
	done := env.must(env.do("POST", "/api/v1/import/customers?commit=true", tok, []byte(custs)), 200).Body
	if done["create"] != float64(1000) || done["written"] != true {
		t.Fatalf("import: %v", done)
	}

	// Equipment refers to customers by code; an unknown customer is named by line.
	badEquip := strings.Replace(equip, ",K0999,", ",K9999,", 1)
	errs := errorsOf(env.do("POST", "/api/v1/import/equipment?commit=true", tok, []byte(badEquip)).Body)
	if len(errs) != 1 || errs[0]["line"] != float64(2999) || !strings.Contains(str(errs[0], "reason"), "K9999 not found") {
		t.Fatalf("unknown customer: %v", errs)
	}
	done = env.must(env.do("POST", "/api/v1/import/equipment?commit=true", tok, []byte(equip)), 200).Body
	if done["create"] != float64(3000) || done["sites_created"] != float64(2000) {
		t.Fatalf("equipment import: %v %v", done["create"], done["sites_created"])
	}
	if n := env.count(tok, "/api/v1/assets"); n != 3000 {
		t.Fatalf("%d assets after the import", n)
	}
	a := env.must(env.do("GET", "/api/v1/assets?serial=SN-0007-0", tok, nil), 200).Body["items"].([]any)[0].(map[string]any)
	if a["manufacturer_onsite"] != true || a["warranty_until"] != "2027-01-31" || a["site_id"] == "" {
		t.Errorf("imported asset: %v", a)
	}

	// The same files again change nothing; so does the export imported back, CSV and XLSX.
	for _, f := range []struct{ kind, body string }{{"customers", custs}, {"equipment", equip}} {
		r := env.must(env.do("POST", "/api/v1/import/"+f.kind+"?commit=true", tok, []byte(f.body)), 200).Body
		if r["unchanged"] != r["rows"] || r["create"] != float64(0) || r["update"] != float64(0) || r["sites_created"] != float64(0) {
			t.Errorf("re-import of %s: %v", f.kind, r)
		}
		for _, format := range []string{"csv", "xlsx"} {
			exp := env.must(env.do("GET", "/api/v1/export/"+f.kind+"?format="+format, tok, nil), 200).Raw
			r := env.must(env.do("POST", "/api/v1/import/"+f.kind, tok, exp), 200).Body
			if r["format"] != format || r["unchanged"] != r["rows"] || r["create"] != float64(0) || r["update"] != float64(0) || len(errorsOf(r)) != 0 {
				t.Errorf("the %s export of %s imported back: %v", format, f.kind, r)
			}
		}
	}

	// A changed cell is an update, named in the preview.
	changed := strings.Replace(custs, "K0003,客户 3 有限公司,0571-0000003,", "K0003,客户 3 有限公司,0571-9999999,", 1)
	r := env.must(env.do("POST", "/api/v1/import/customers?commit=true", tok, []byte(changed)), 200).Body
	if r["update"] != float64(1) || fmt.Sprint(r["preview"]) != "[map[action:update changes:[phone] key:K0003 line:5]]" {
		t.Errorf("one changed phone: %v %v", r["update"], r["preview"])
	}
}

// An XLSX file with dates as spreadsheet numbers and a bad date, named by row.
func TestImportXLSX(t *testing.T) {
	env := newEnv(t, false)
	tok := env.login("admin", "admin-pass-1")
	env.must(env.do("POST", "/api/v1/import/customers?commit=true", tok, []byte("name,phone\n华东精密,021-1\n")), 200)
	f := excelize.NewFile()
	sh := f.GetSheetName(0)
	f.SetSheetRow(sh, "A1", &[]any{"序列号", "型号", "客户名称", "客户电话", "保修至"})
	f.SetSheetRow(sh, "A2", &[]any{"X-1", "M1", "华东精密", "021-1", 46000})
	f.SetSheetRow(sh, "A3", &[]any{"X-2", "M1", "华东精密", "021-1", "明年"})
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	errs := errorsOf(env.do("POST", "/api/v1/import/equipment?commit=true", tok, b.Bytes()).Body)
	if len(errs) != 1 || errs[0]["line"] != float64(3) || errs[0]["column"] != "warranty_until" {
		t.Fatalf("bad date: %v", errs)
	}
	f.SetCellValue(sh, "E3", "2026-12-31")
	b.Reset()
	f.Write(&b)
	r := env.must(env.do("POST", "/api/v1/import/equipment?commit=true", tok, b.Bytes()), 200).Body
	if r["create"] != float64(2) || r["format"] != "xlsx" {
		t.Fatalf("xlsx import: %v", r)
	}
	a := env.must(env.do("GET", "/api/v1/assets?serial=X-1", tok, nil), 200).Body["items"].([]any)[0].(map[string]any)
	if a["warranty_until"] != "2025-12-09" {
		t.Errorf("spreadsheet date 46000 imported as %v", a["warranty_until"])
	}
	if r := env.do("POST", "/api/v1/import/nothing", tok, []byte("a\n")); r.Status != 404 {
		t.Errorf("unknown kind: %d", r.Status)
	}
	if r := env.do("POST", "/api/v1/import/customers", tok, []byte("name,colour\nx,red\n")); len(errorsOf(r.Body)) != 1 || errorsOf(r.Body)[0]["line"] != float64(1) {
		t.Errorf("unknown column: %s", r.Raw)
	}
}
