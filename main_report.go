package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"fieldsync/reports"
	"fieldsync/schema"
	"fieldsync/server"
)

func init() {
	extraCommands = append(extraCommands, command{"report", "report month YYYY-MM --data DIR -o FILE.pdf|.csv|.xlsx   month-end report", cmdReport})
}

// cmdReport writes a month's report from the data folder: the PDF to print and sign, or the
// CSV for spreadsheets, chosen by the output file's extension. A compiled month prints as
// stored (its status, figures and trail); a month nobody compiled yet prints as a preview
// computed from the records as they stand, marked draft, and stores nothing. The file is
// written through a temporary file renamed into place, so a failure leaves nothing broken.
func cmdReport(args []string) error {
	const synopsis = "report month YYYY-MM --data DIR -o FILE.pdf|.csv|.xlsx [--lang zh|en|both]"
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		newFlags("report", synopsis).Usage()
		if len(args) == 0 {
			return errors.New("name the report: month")
		}
		return nil
	}
	if args[0] != "month" {
		return fmt.Errorf("unknown report %q: the one report is month (fieldsync %s)", args[0], synopsis)
	}
	args = args[1:]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("report month needs the month, e.g. 2026-11: fieldsync %s", synopsis)
	}
	month, args := args[0], args[1:]
	fs := newFlags("report month", synopsis)
	company := storeFlags(fs)
	out := fs.String("o", "", "output file, .pdf, .csv or .xlsx")
	lang := fs.String("lang", "", "labels: zh, en or both (default: the pdf_lang setting)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: fieldsync %s", fs.Arg(0), synopsis)
	}
	ext := strings.ToLower(filepath.Ext(*out))
	if *out == "" || (ext != ".pdf" && ext != ".csv" && ext != ".xlsx") {
		return fmt.Errorf("-o FILE.pdf, FILE.csv or FILE.xlsx is required (got %q)", *out)
	}
	db, e, err := company.openEngine()
	if err != nil {
		return err
	}
	defer db.Close()
	defer e.Close()
	ctx := context.Background()
	st := e.Settings()
	l := reports.Lang(*lang)
	if l == "" {
		l = reports.Lang(st.String("pdf_lang"))
	}

	var m server.StoredMonth
	d, err := e.MonthReport(ctx, month)
	switch se, _ := schema.AsError(err); {
	case err == nil:
		if m, err = server.DecodeMonth(d); err != nil {
			return err
		}
	case se != nil && se.Code == schema.CodeNotFound:
		facts, err := e.MonthFactsPreview(ctx, month)
		if err != nil {
			return err
		}
		r := reports.ComputeMonth(facts)
		m = server.StoredMonth{Month: r.Month, Status: "draft", Rows: r.Rows, Totals: r.Totals, Warnings: r.Warnings}
		fmt.Fprintf(os.Stderr, "month %s was not compiled yet: writing a preview from the records as they stand (draft)\n", month)
	default:
		if se != nil {
			return errors.New(se.Message)
		}
		return err
	}

	var buf bytes.Buffer
	switch ext {
	case ".pdf":
		err = reports.RenderMonthReport(&buf, server.MonthReportData(m, st), reports.Options{Lang: l, Now: e.Now})
	case ".xlsx":
		var recv []schema.Receivable
		if recv, err = server.Receivables(ctx, e, ""); err == nil {
			err = reports.WriteMonthXLSX(&buf, server.MonthReportData(m, st), recv, string(l))
		}
	default:
		err = reports.WriteMonthCSV(&buf, reports.MonthResult{Month: m.Month, Rows: m.Rows, Totals: m.Totals, Warnings: m.Warnings}, string(l))
	}
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		os.Remove(tmp)
		return err
	}
	fmt.Printf("wrote %s: month %s (%s), %d technicians, %d counted services\n", *out, m.Month, m.Status, len(m.Rows), m.Totals.CountedServices)
	return nil
}
