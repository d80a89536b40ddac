package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"fieldsync/reports"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

func init() {
	apiDoc = append(apiDoc, []routeDoc{
		{"POST", "/api/v1/months/{month}/compile", "compile the month's statistics table from the records (replaces a draft; 409 once reviewed or approved)", "coordinator, admin", false},
		{"GET", "/api/v1/months/{month}", "a compiled month: {month, status, rows, totals, trail, excluded, warnings, ...}", "office", false},
		{"POST", "/api/v1/months/{month}/actions/{action}", "review (manager), return {comment} (manager; leader once reviewed), approve (leader)", "manager, leader", true},
		{"GET", "/api/v1/months/{month}/report.pdf", "the monthly report to print and sign (DRAFT / 草稿 until approved; ?lang=zh|en|both)", "office", false},
		{"GET", "/api/v1/months/{month}/report.csv", "the statistics table as CSV, UTF-8 with BOM (?lang=zh|en|both)", "office", false},
		{"GET", "/api/v1/months/{month}/report.xlsx", "the month as a workbook: statistics, pay lines, sales, receivables at export, expenses (?lang=zh|en|both)", "office", false},
		{"GET", "/mobile/v1/months/{month}/me", "the technician's own row of a compiled month", "technician (device)", false},
	}...)
}

// monthRoutes registers the month-end endpoints.
func (s *Server) monthRoutes(office fiber.Router) {
	office.Post("/months/:month/compile", s.compileMonth)
	office.Get("/months/:month", s.getMonth)
	office.Post("/months/:month/actions/:action", s.monthAction)
	office.Get("/months/:month/report.pdf", s.monthPDF)
	office.Get("/months/:month/report.csv", s.monthCSV)
	office.Get("/months/:month/report.xlsx", s.monthXLSX)
}

// monthComputer is the computation CompileMonth runs inside its transaction.
func monthComputer(f schema.MonthInput) (syncer.MonthOutcome, error) {
	r := reports.ComputeMonth(f)
	out := syncer.MonthOutcome{Rows: r.Rows, Totals: r.Totals, Warnings: r.Warnings}
	for _, row := range r.Rows {
		out.CountedSheetIDs = append(out.CountedSheetIDs, row.CountedSheetIDs...)
		out.UpheldComplaintIDs = append(out.UpheldComplaintIDs, row.ComplaintIDs...)
		out.MoneyIDs = append(out.MoneyIDs, row.MoneyIDs...)
	}
	return out, nil
}

// StoredMonth is a month report record decoded for rendering.
type StoredMonth struct {
	Month      string               `json:"month"`
	Status     string               `json:"status"`
	Rows       []reports.Row        `json:"rows"`
	Totals     reports.Totals       `json:"totals"`
	Warnings   []string             `json:"warnings"`
	Trail      []reports.TrailEntry `json:"trail"`
	CompiledAt time.Time            `json:"compiled_at"`
}

// DecodeMonth reads a stored month report.
func DecodeMonth(d schema.Doc) (StoredMonth, error) {
	var m StoredMonth
	if err := json.Unmarshal(schema.MustJSON(d), &m); err != nil {
		return m, fmt.Errorf("month report %s: %w", d.Str("id"), err)
	}
	return m, nil
}

// MonthReportData builds what the PDF renderer prints for a stored month.
func MonthReportData(m StoredMonth, st *schema.Settings) *reports.MonthReportData {
	return &reports.MonthReportData{
		Result:      reports.MonthResult{Month: m.Month, Rows: m.Rows, Totals: m.Totals, Warnings: m.Warnings},
		Status:      m.Status,
		Trail:       m.Trail,
		CompanyName: st.String("company_name"),
		Location:    st.Location(),
		CompiledAt:  m.CompiledAt,
	}
}

// monthParam copies the :month parameter (Fiber reuses its buffers).
func monthParam(c *fiber.Ctx) string { return strings.Clone(c.Params("month")) }

// monthView is the API's shape of a month report: the record, plus every excluded sheet
// across technicians with its reason, so the coordinator sees what to chase at a glance.
func monthView(d schema.Doc) (schema.Doc, error) {
	m, err := DecodeMonth(d)
	if err != nil {
		return nil, err
	}
	excluded := []map[string]any{}
	for _, r := range m.Rows {
		for _, x := range r.Excluded {
			excluded = append(excluded, map[string]any{"technician": r.Technician, "sheet_id": x.SheetID,
				"ticket_number": x.TicketNumber, "reason": x.Reason})
		}
	}
	out := d.Clone()
	out["excluded"] = excluded
	return out, nil
}

func (s *Server) compileMonth(c *fiber.Ctx) error {
	return sendMonth(c)(s.Engine.CompileMonth(c.UserContext(), session(c).Actor, monthParam(c), monthComputer))
}

func (s *Server) getMonth(c *fiber.Ctx) error {
	return sendMonth(c)(s.Engine.MonthReport(c.UserContext(), monthParam(c)))
}

// sendMonth answers with a stored month as the API shows it, or with the error.
func sendMonth(c *fiber.Ctx) func(schema.Doc, error) error {
	return func(d schema.Doc, err error) error {
		if err != nil {
			return err
		}
		v, err := monthView(d)
		if err != nil {
			return err
		}
		return c.JSON(v)
	}
}

type monthActionBody struct {
	Comment string `json:"comment"`
}

func (s *Server) monthAction(c *fiber.Ctx) error {
	var b monthActionBody
	if len(bytes.TrimSpace(c.Body())) > 0 {
		if err := decodeBody(c, &b); err != nil {
			return err
		}
	}
	d, err := s.Engine.StepMonth(c.UserContext(), session(c).Actor, monthParam(c), strings.Clone(c.Params("action")), b.Comment)
	if err != nil {
		return err
	}
	v, err := monthView(d)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// reportLang reads ?lang=, defaulting to the pdf_lang setting.
func (s *Server) reportLang(c *fiber.Ctx) (reports.Lang, error) {
	l := c.Query("lang", s.Engine.Settings().String("pdf_lang"))
	switch reports.Lang(l) {
	case reports.LangZH, reports.LangEN, reports.LangBoth:
		return reports.Lang(l), nil
	}
	return "", schema.FieldError(schema.CodeValidation, "lang", "lang %q is not one of zh, en, both", l)
}

// storedMonth reads the month of the URL and the language asked for, for the exports.
func (s *Server) storedMonth(c *fiber.Ctx) (StoredMonth, reports.Lang, error) {
	lang, err := s.reportLang(c)
	if err != nil {
		return StoredMonth{}, "", err
	}
	d, err := s.Engine.MonthReport(c.UserContext(), monthParam(c))
	if err != nil {
		return StoredMonth{}, "", err
	}
	m, err := DecodeMonth(d)
	return m, lang, err
}

func (s *Server) monthPDF(c *fiber.Ctx) error {
	m, lang, err := s.storedMonth(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := reports.RenderMonthReport(&buf, MonthReportData(m, s.Engine.Settings()), reports.Options{Lang: lang, Now: s.Engine.Now}); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/pdf")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`inline; filename="month-%s.pdf"`, m.Month))
	return c.Send(buf.Bytes())
}

func (s *Server) monthCSV(c *fiber.Ctx) error {
	m, lang, err := s.storedMonth(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := reports.WriteMonthCSV(&buf, reports.MonthResult{Month: m.Month, Rows: m.Rows, Totals: m.Totals, Warnings: m.Warnings}, string(lang)); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="month-%s.csv"`, m.Month))
	return c.Send(buf.Bytes())
}

func (s *Server) monthXLSX(c *fiber.Ctx) error {
	m, lang, err := s.storedMonth(c)
	if err != nil {
		return err
	}
	recv, err := Receivables(c.UserContext(), s.Engine, "")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := reports.WriteMonthXLSX(&buf, MonthReportData(m, s.Engine.Settings()), recv, string(lang)); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="month-%s.xlsx"`, m.Month))
	return c.Send(buf.Bytes())
}
