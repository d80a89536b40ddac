package server

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// Master data in bulk: customers and equipment imported from a CSV or XLSX file, previewed
// first, written as one Whole batch through the write path (all or nothing), and exported in
// the same layout, so an exported file imports back without changing anything.
// docs/console.md describes the columns and the rules.

func init() {
	apiDoc = append(apiDoc, []routeDoc{
		{"POST", "/api/v1/import/{kind}", "import customers or equipment (kind: customers | equipment) from the request body, a CSV (UTF-8) or XLSX file; without ?commit=true a preview that writes nothing; with it one all-or-nothing batch. Answers {rows, create, update, unchanged, sites_created, errors: [{line, column, reason}], preview, written}", "office", true},
		{"GET", "/api/v1/export/{kind}", "export customers or equipment in the import's layout (?format=csv|xlsx)", "office", false},
	}...)
}

func (s *Server) importRoutes(office fiber.Router) {
	office.Post("/import/:kind", s.importFile)
	office.Get("/export/:kind", s.exportFile)
}

// importCol is one column of an import file: its key, its Chinese name (either is accepted
// as the header, or both as "中文 key"), and whether every row needs it.
type importCol struct {
	key, zh  string
	required bool
}

var customerCols = []importCol{{"code", "编号", false}, {"name", "名称", true}, {"phone", "电话", false}, {"address", "地址", false}, {"notes", "备注", false}}

var equipmentCols = []importCol{
	{"serial", "序列号", true}, {"model", "型号", true},
	{"customer_code", "客户编号", false}, {"customer_name", "客户名称", false}, {"customer_phone", "客户电话", false},
	{"site", "地点", false}, {"site_address", "地点地址", false},
	{"install_date", "安装日期", false}, {"warranty_until", "保修至", false},
	{"manufacturer", "厂家", false}, {"manufacturer_onsite", "厂家上门", false},
}

func importColumns(kind string) ([]importCol, error) {
	switch kind {
	case "customers":
		return customerCols, nil
	case "equipment":
		return equipmentCols, nil
	}
	return nil, schema.FieldError(schema.CodeNotFound, "kind", "导入类型只有 customers 和 equipment / the kinds are customers and equipment, not %q", kind)
}

// maxImportRows bounds a file, so one upload cannot hold the write path for long.
const maxImportRows = 20000

// rowError names a bad row by its line in the file and says why.
type rowError struct {
	Line   int    `json:"line"`
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
}

// previewRow says what importing one row does.
type previewRow struct {
	Line    int      `json:"line"`
	Action  string   `json:"action"` // create, update
	Key     string   `json:"key"`
	Changes []string `json:"changes,omitempty"`
}

type importReport struct {
	Kind         string       `json:"kind"`
	Format       string       `json:"format"`
	Rows         int          `json:"rows"`
	Create       int          `json:"create"`
	Update       int          `json:"update"`
	Unchanged    int          `json:"unchanged"`
	SitesCreated int          `json:"sites_created"`
	Errors       []rowError   `json:"errors"`
	Preview      []previewRow `json:"preview"`
	Written      bool         `json:"written"`
}

// previewLimit bounds the rows listed in a preview; the counts cover all of them.
const previewLimit = 200

// table is a file's rows after the header, each with its line in the file and its cells by
// column key.
type table struct {
	format string
	lines  []int
	rows   []map[string]string
}

// readTable reads a CSV or XLSX file (told apart by content) and maps its columns by the
// header row. Problems with the file as a whole come back as an error; problems with the
// header as row errors on line 1.
func readTable(body []byte, cols []importCol) (*table, []rowError, error) {
	var records [][]string
	var lines []int
	t := &table{}
	if bytes.HasPrefix(body, []byte("PK\x03\x04")) {
		t.format = "xlsx"
		f, err := excelize.OpenReader(bytes.NewReader(body))
		if err != nil {
			return nil, nil, schema.Errorf(schema.CodeValidation, "无法读取 XLSX 文件 / the XLSX file cannot be read: %v", err)
		}
		defer f.Close()
		sheets := f.GetSheetList()
		if len(sheets) == 0 {
			return nil, nil, schema.Errorf(schema.CodeValidation, "XLSX 文件没有工作表 / the XLSX file has no sheet")
		}
		rows, err := f.GetRows(sheets[0], excelize.Options{RawCellValue: true})
		if err != nil {
			return nil, nil, schema.Errorf(schema.CodeValidation, "无法读取 XLSX 文件 / the XLSX file cannot be read: %v", err)
		}
		for i, r := range rows {
			records, lines = append(records, r), append(lines, i+1)
		}
	} else {
		t.format = "csv"
		body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
		if !utf8.Valid(body) {
			return nil, nil, schema.Errorf(schema.CodeValidation, "CSV 文件不是 UTF-8 编码，请另存为 UTF-8 / the CSV file is not UTF-8 text: save it as CSV UTF-8")
		}
		rd := csv.NewReader(bytes.NewReader(body))
		rd.FieldsPerRecord = -1
		for {
			rec, err := rd.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return nil, []rowError{{Line: pe.StartLine, Reason: "CSV 格式错误 / malformed CSV: " + pe.Err.Error()}}, nil
				}
				return nil, nil, err
			}
			line, _ := rd.FieldPos(0)
			records, lines = append(records, rec), append(lines, line)
		}
	}
	if len(records) == 0 {
		return nil, nil, schema.Errorf(schema.CodeValidation, "文件是空的 / the file is empty: the first row names the columns")
	}
	if len(records)-1 > maxImportRows {
		return nil, nil, schema.Errorf(schema.CodeTooLarge, "文件超过 %d 行 / the file has more than %d rows: split it", maxImportRows, maxImportRows)
	}
	var errs []rowError
	keys := make([]string, len(records[0]))
	seen := map[string]bool{}
	for i, h := range records[0] {
		k := headerKey(h, cols)
		switch {
		case strings.TrimSpace(h) == "":
		case k == "":
			errs = append(errs, rowError{Line: lines[0], Column: h, Reason: fmt.Sprintf("未知的列 / unknown column %q", h)})
		case seen[k]:
			errs = append(errs, rowError{Line: lines[0], Column: k, Reason: fmt.Sprintf("列 %s 出现两次 / column %s appears twice", k, k)})
		}
		seen[k], keys[i] = true, k
	}
	for _, c := range cols {
		if c.required && !seen[c.key] {
			errs = append(errs, rowError{Line: lines[0], Column: c.key, Reason: fmt.Sprintf("缺少列 %s / the column %s is missing", c.zh, c.key)})
		}
	}
	for i, rec := range records[1:] {
		row := map[string]string{}
		blank := true
		for j, v := range rec {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			blank = false
			if j < len(keys) && keys[j] == "" && strings.TrimSpace(records[0][j]) != "" {
				continue // under an unknown column, named on line 1 already
			}
			if j >= len(keys) || keys[j] == "" {
				errs = append(errs, rowError{Line: lines[i+1], Reason: fmt.Sprintf("第 %d 列没有列名 / cell %d has no column header", j+1, j+1)})
				continue
			}
			row[keys[j]] = v
		}
		if !blank {
			t.rows, t.lines = append(t.rows, row), append(t.lines, lines[i+1])
		}
	}
	return t, errs, nil
}

func headerKey(h string, cols []importCol) string {
	for _, tok := range strings.Fields(strings.ToLower(h)) {
		for _, c := range cols {
			if tok == c.key || tok == c.zh {
				return c.key
			}
		}
	}
	return ""
}

// plan is the batch an import would apply, with the file line of each mutation.
type plan struct {
	rep   *importReport
	muts  []syncer.Mutation
	lines []int
}

func (p *plan) fail(line int, col, format string, args ...any) {
	p.rep.Errors = append(p.rep.Errors, rowError{Line: line, Column: col, Reason: fmt.Sprintf(format, args...)})
}

// put adds the create or update that makes a record have the wanted fields; a record that
// has them already adds nothing.
func (p *plan) put(line int, key, entity string, cur schema.Doc, want schema.Doc) string {
	if cur == nil {
		id := uuid.Must(uuid.NewV7()).String()
		p.muts = append(p.muts, syncer.Mutation{Entity: entity, ID: id, Op: "create", Fields: rawFields(want)})
		p.lines = append(p.lines, line)
		if entity == schema.EntSite {
			p.rep.SitesCreated++
		} else {
			p.rep.Create++
			p.preview(previewRow{Line: line, Action: "create", Key: key})
		}
		return id
	}
	changed := schema.Doc{}
	var names []string
	for k, v := range want {
		if !schema.Equal(cur[k], v) && !(cur[k] == nil && (v == false || v == "")) {
			changed[k] = v
			names = append(names, k)
		}
	}
	if len(changed) > 0 {
		p.muts = append(p.muts, syncer.Mutation{Entity: entity, ID: cur.Str("id"), Op: "update", BaseVersion: cur.Int("version"), Fields: rawFields(changed)})
		p.lines = append(p.lines, line)
		if entity != schema.EntSite {
			p.rep.Update++
			slices.Sort(names)
			p.preview(previewRow{Line: line, Action: "update", Key: key, Changes: names})
		}
	} else if entity != schema.EntSite {
		p.rep.Unchanged++
	}
	return cur.Str("id")
}

func (p *plan) preview(r previewRow) {
	if len(p.rep.Preview) < previewLimit {
		p.rep.Preview = append(p.rep.Preview, r)
	}
}

// customerIndex finds customers the way an import keys them: by code, or by name and phone.
type customerIndex struct {
	byCode, byNamePhone map[string]schema.Doc
}

func namePhone(name, phone string) string { return name + "\x00" + phone }

func (s *Server) loadCustomers(c *fiber.Ctx) (*customerIndex, error) {
	all, err := s.Engine.List(c.UserContext(), syncer.Query{Entity: schema.EntCustomer})
	if err != nil {
		return nil, err
	}
	ix := &customerIndex{byCode: map[string]schema.Doc{}, byNamePhone: map[string]schema.Doc{}}
	for _, d := range all {
		if code := d.Str("code"); code != "" {
			ix.byCode[code] = d
		}
		if _, dup := ix.byNamePhone[namePhone(d.Str("name"), d.Str("phone"))]; !dup {
			ix.byNamePhone[namePhone(d.Str("name"), d.Str("phone"))] = d
		}
	}
	return ix, nil
}

// find returns the customer a row means: the one with its code; without a code the one
// with its name and phone; a code no customer has yet finds the customer with that name and
// phone only if it has no code.
func (ix *customerIndex) find(code, name, phone string) schema.Doc {
	if code != "" {
		if d := ix.byCode[code]; d != nil {
			return d
		}
	}
	if d := ix.byNamePhone[namePhone(name, phone)]; d != nil && (code == "" || d.Str("code") == "") {
		return d
	}
	return nil
}

func customerKey(code, name, phone string) string {
	if code != "" {
		return code
	}
	if phone == "" {
		return name
	}
	return name + " · " + phone
}

func (s *Server) planCustomers(c *fiber.Ctx, t *table, p *plan) error {
	ix, err := s.loadCustomers(c)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for i, r := range t.rows {
		line := t.lines[i]
		if r["name"] == "" {
			p.fail(line, "name", "缺少客户名称 / the customer's name is missing")
			continue
		}
		key := customerKey(r["code"], r["name"], r["phone"])
		if first, dup := seen[key]; dup {
			p.fail(line, "code", "与第 %d 行是同一客户 / the same customer as line %d (%s)", first, first, key)
			continue
		}
		seen[key] = line
		if r["code"] != "" {
			seen[customerKey("", r["name"], r["phone"])] = line
		}
		want := schema.Doc{}
		for _, col := range customerCols {
			if v := r[col.key]; v != "" {
				want[col.key] = v
			}
		}
		p.put(line, key, schema.EntCustomer, ix.find(r["code"], r["name"], r["phone"]), want)
	}
	return nil
}

func (s *Server) planEquipment(c *fiber.Ctx, t *table, p *plan) error {
	ctx := c.UserContext()
	ix, err := s.loadCustomers(c)
	if err != nil {
		return err
	}
	sites, err := s.Engine.List(ctx, syncer.Query{Entity: schema.EntSite})
	if err != nil {
		return err
	}
	siteOf := map[string]schema.Doc{} // customer id + name → site
	for _, d := range sites {
		siteOf[d.Str("customer_id")+"\x00"+d.Str("name")] = d
	}
	assets, err := s.Engine.List(ctx, syncer.Query{Entity: schema.EntAsset})
	if err != nil {
		return err
	}
	bySerial := map[string]schema.Doc{}
	for _, d := range assets {
		bySerial[d.Str("serial")] = d
	}
	loc := s.Engine.Settings().Location()
	seen := map[string]int{}
	newSites := map[string]string{} // customer id + name → id of a site this file creates
	for i, r := range t.rows {
		line := t.lines[i]
		nerr := len(p.rep.Errors)
		serial := r["serial"]
		if serial == "" {
			p.fail(line, "serial", "缺少序列号 / the serial number is missing")
		} else if first, dup := seen[serial]; dup {
			p.fail(line, "serial", "序列号 %s 与第 %d 行重复 / serial %s is on line %d too", serial, first, serial, first)
		} else {
			seen[serial] = line
		}
		if r["model"] == "" {
			p.fail(line, "model", "缺少型号 / the model is missing")
		}
		var cust schema.Doc
		if r["customer_code"] == "" && r["customer_name"] == "" {
			p.fail(line, "customer_code", "缺少客户（编号或名称）/ no customer: give customer_code or customer_name")
		} else if cust = ix.find(r["customer_code"], r["customer_name"], r["customer_phone"]); cust == nil {
			p.fail(line, "customer_code", "找不到客户 %s，请先导入客户 / customer %s not found: import the customers first",
				customerKey(r["customer_code"], r["customer_name"], r["customer_phone"]), customerKey(r["customer_code"], r["customer_name"], r["customer_phone"]))
		}
		want := schema.Doc{"model": r["model"], "serial": serial}
		for _, k := range []string{"install_date", "warranty_until"} {
			if v := r[k]; v != "" {
				d, ok := importDate(v, loc)
				if !ok {
					p.fail(line, k, "%s 不是日期 / %q is not a date (YYYY-MM-DD)", v, v)
				}
				want[k] = d
			}
		}
		if v := r["manufacturer"]; v != "" {
			want["manufacturer"] = v
		}
		if v := r["manufacturer_onsite"]; v != "" {
			b, ok := importBool(v)
			if !ok {
				p.fail(line, "manufacturer_onsite", "%s 不是 是/否 / %q is not yes or no", v, v)
			}
			want["manufacturer_onsite"] = b
		}
		cur := bySerial[serial]
		if cur != nil && cust != nil && cur.Str("customer_id") != cust.Str("id") {
			p.fail(line, "serial", "序列号 %s 属于另一客户，设备不能换客户 / serial %s belongs to another customer; equipment cannot move between customers", serial, serial)
		}
		if len(p.rep.Errors) > nerr {
			continue
		}
		if name := r["site"]; name != "" {
			k := cust.Str("id") + "\x00" + name
			siteWant := schema.Doc{"name": name}
			if a := r["site_address"]; a != "" {
				siteWant["address"] = a
			}
			if id, ok := newSites[k]; ok {
				want["site_id"] = id
			} else if cur := siteOf[k]; cur != nil {
				want["site_id"] = p.put(line, "", schema.EntSite, cur, siteWant)
				siteOf[k] = nil // its address is taken from its first line only
				newSites[k] = want.Str("site_id")
			} else {
				siteWant["customer_id"] = cust.Str("id")
				newSites[k] = p.put(line, "", schema.EntSite, nil, siteWant)
				want["site_id"] = newSites[k]
			}
		}
		if cur == nil {
			want["customer_id"] = cust.Str("id")
		}
		p.put(line, serial, schema.EntAsset, cur, want)
	}
	return nil
}

// importDate reads a date cell: YYYY-MM-DD, YYYY/MM/DD, or a spreadsheet's date number.
func importDate(v string, loc *time.Location) (string, bool) {
	for _, layout := range []string{time.DateOnly, "2006/1/2", "2006-1-2", "2006.1.2"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.Format(time.DateOnly), true
		}
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 1 && f < 2958466 {
		if t, err := excelize.ExcelDateToTime(f, false); err == nil {
			return t.Format(time.DateOnly), true
		}
	}
	return v, false
}

// importBool reads a yes/no cell, in either language ("是 yes" as exported, too).
func importBool(v string) (bool, bool) {
	for _, tok := range strings.Fields(strings.ToLower(v)) {
		switch tok {
		case "yes", "y", "true", "1", "是", "有":
			return true, true
		case "no", "n", "false", "0", "否", "无":
			return false, true
		}
	}
	return false, false
}

// importFile previews or imports a file. The preview judges the whole batch through the
// write path and writes nothing; the import writes it as one Whole batch, so a file with any
// bad row changes nothing.
func (s *Server) importFile(c *fiber.Ctx) error {
	kind := strings.Clone(c.Params("kind"))
	cols, err := importColumns(kind)
	if err != nil {
		return err
	}
	commit := c.Query("commit") == "true"
	t, errs, err := readTable(c.Body(), cols)
	if err != nil {
		return err
	}
	rep := &importReport{Kind: kind, Errors: errs, Preview: []previewRow{}}
	p := &plan{rep: rep}
	if t != nil {
		rep.Format, rep.Rows = t.format, len(t.rows)
		if len(errs) == 0 {
			if kind == "customers" {
				err = s.planCustomers(c, t, p)
			} else {
				err = s.planEquipment(c, t, p)
			}
			if err != nil {
				return err
			}
		}
	}
	if len(rep.Errors) == 0 && len(p.muts) > 0 {
		res, err := s.Engine.Apply(c.UserContext(), session(c).Actor, p.muts, syncer.Options{Whole: commit, DryRun: !commit})
		if err != nil && !errors.Is(err, syncer.ErrNotWritten) {
			return err
		}
		for i, r := range res {
			if r.Status == syncer.StatusRejected && r.Code != schema.CodeDependsOnRejected {
				p.fail(p.lines[i], r.Field, "%s", r.Message)
			}
		}
		rep.Written = commit && err == nil
	}
	slices.SortStableFunc(rep.Errors, func(a, b rowError) int { return a.Line - b.Line })
	if rep.Errors == nil {
		rep.Errors = []rowError{}
	}
	if commit && len(rep.Errors) > 0 {
		return c.Status(HTTPStatus(schema.CodeValidation)).JSON(fiber.Map{
			"error":  fiber.Map{"code": schema.CodeValidation, "message": fmt.Sprintf("%d 处错误，未导入任何数据 / %d errors: nothing was imported", len(rep.Errors), len(rep.Errors))},
			"report": rep})
	}
	return c.JSON(rep)
}

// exportFile writes customers or equipment in the import's layout, with bilingual headers.
func (s *Server) exportFile(c *fiber.Ctx) error {
	kind := strings.Clone(c.Params("kind"))
	cols, err := importColumns(kind)
	if err != nil {
		return err
	}
	format := c.Query("format", "csv")
	if format != "csv" && format != "xlsx" {
		return schema.FieldError(schema.CodeValidation, "format", "format 只能是 csv 或 xlsx / format must be csv or xlsx, not %q", format)
	}
	ctx := c.UserContext()
	custs, err := s.Engine.List(ctx, syncer.Query{Entity: schema.EntCustomer, Order: "data ->> 'name', id"})
	if err != nil {
		return err
	}
	header := make([]string, len(cols))
	for i, col := range cols {
		header[i] = col.zh + " " + col.key
	}
	rows := [][]string{header}
	if kind == "customers" {
		for _, d := range custs {
			rows = append(rows, []string{d.Str("code"), d.Str("name"), d.Str("phone"), d.Str("address"), d.Str("notes")})
		}
	} else {
		byID := map[string]schema.Doc{}
		for _, d := range custs {
			byID[d.Str("id")] = d
		}
		sites, err := s.Engine.List(ctx, syncer.Query{Entity: schema.EntSite})
		if err != nil {
			return err
		}
		siteByID := map[string]schema.Doc{}
		for _, d := range sites {
			siteByID[d.Str("id")] = d
		}
		assets, err := s.Engine.List(ctx, syncer.Query{Entity: schema.EntAsset, Order: "serial, id"})
		if err != nil {
			return err
		}
		for _, a := range assets {
			cu, si := byID[a.Str("customer_id")], siteByID[a.Str("site_id")]
			onsite := "否 no"
			if a.Bool("manufacturer_onsite") {
				onsite = "是 yes"
			}
			rows = append(rows, []string{a.Str("serial"), a.Str("model"), cu.Str("code"), cu.Str("name"), cu.Str("phone"),
				si.Str("name"), si.Str("address"), a.Str("install_date"), a.Str("warranty_until"), a.Str("manufacturer"), onsite})
		}
	}
	name := kind + "-" + s.Engine.Now().In(s.Engine.Settings().Location()).Format("20060102") + "." + format
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	if format == "csv" {
		var b bytes.Buffer
		b.WriteString("\xef\xbb\xbf")
		w := csv.NewWriter(&b)
		w.WriteAll(rows)
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		return c.Send(b.Bytes())
	}
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	for i, r := range rows {
		cells := make([]any, len(r))
		for j, v := range r {
			cells[j] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sheet, cell, &cells); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	return c.Send(b.Bytes())
}
