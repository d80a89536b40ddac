package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
	"fieldsync/server"
	syncer "fieldsync/sync"
)

// demoData seeds the demo company into a fresh data folder, stops the server, and returns
// the folder and the number of a demo ticket. FIELDSYNC_DB names its store for the
// commands the test runs in its own process.
func demoData(t *testing.T) (dir, number string) {
	t.Helper()
	dir = t.TempDir()
	t.Setenv("FIELDSYNC_DB", testpg.For(t, dir))
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{DataDir: dir, DB: testpg.For(t, dir), Demo: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := srv.Engine.List(ctx, syncer.Query{Entity: schema.EntTicket, Where: []string{"data ->> 'fault_symptoms' LIKE '触摸屏%'"}})
	if err != nil || len(list) == 0 {
		t.Fatalf("demo ticket: %v %v", list, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	return dir, list[0].Str("number")
}

func pdfInfo(t *testing.T, path string) (pages, text string) {
	t.Helper()
	for _, tool := range []string{"pdfinfo", "pdftotext"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install poppler-utils)", tool)
		}
	}
	info, err := exec.Command("pdfinfo", path).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfinfo %s: %v\n%s", path, err, info)
	}
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindSubmatch(info)
	if m == nil {
		t.Fatalf("pdfinfo: no page count:\n%s", info)
	}
	out, err := exec.Command("pdftotext", "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext %s: %v\n%s", path, err, out)
	}
	return string(m[1]), string(out)
}

func TestCmdPDF(t *testing.T) {
	data, number := demoData(t)
	out := t.TempDir()

	form := filepath.Join(out, "form.pdf")
	if err := cmdPDF([]string{"form", number, "--data", data, "-o", form}); err != nil {
		t.Fatal(err)
	}
	pages, text := pdfInfo(t, form)
	flat := strings.Join(strings.Fields(text), "")
	if pages != "1" || !strings.Contains(flat, number) || !strings.Contains(flat, "华东精密仪器有限公司") || !strings.Contains(flat, "故障现象") {
		t.Errorf("form %s: %s pages, text:\n%s", number, pages, text)
	}

	en := filepath.Join(out, "form-en.pdf")
	if err := cmdPDF([]string{"form", number, "--data", data, "-o", en, "--lang", "en"}); err != nil {
		t.Fatal(err)
	}
	if _, text := pdfInfo(t, en); strings.Contains(text, "故障现象") || !strings.Contains(text, "Fault symptoms") {
		t.Errorf("--lang en: want English labels only:\n%s", text)
	}

	blank := filepath.Join(out, "blank.pdf")
	if err := cmdPDF([]string{"blank", "--data", data, "-o", blank}); err != nil {
		t.Fatal(err)
	}
	if pages, text := pdfInfo(t, blank); pages != "1" || !strings.Contains(text, "Service Feedback Sheet") {
		t.Errorf("blank form: %s pages:\n%s", pages, text)
	}
}

func TestCmdPDFErrors(t *testing.T) {
	data, number := demoData(t)
	out := filepath.Join(t.TempDir(), "x.pdf")
	missing := filepath.Join(t.TempDir(), "nowhere")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no document", nil, "form, sheet or blank"},
		{"unknown document", []string{"invoice", "1", "--data", data, "-o", out}, `"invoice"`},
		{"no id", []string{"form", "--data", data, "-o", out}, "ticket id"},
		{"no output", []string{"form", number, "--data", data}, "-o FILE"},
		{"no such ticket", []string{"form", "SR-000000-0000", "--data", data, "-o", out}, "SR-000000-0000"},
		{"no such sheet", []string{"sheet", "nope", "--data", data, "-o", out}, "nope"},
		{"bad lang", []string{"blank", "--data", data, "-o", out, "--lang", "fr"}, "lang"},
		{"no database", []string{"blank", "--data", missing, "--db", testpg.For(t, missing), "-o", out}, "no fieldsync database"},
		{"stray argument", []string{"blank", "--data", data, "-o", out, "extra"}, `"extra"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := cmdPDF(c.args)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("cmdPDF(%q) = %v, want an error containing %q", c.args, err, c.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatalf("a failed command left %s behind", out)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("a mistyped --data created %s", missing)
	}
}

func TestCmdPDFSheet(t *testing.T) {
	data, _ := demoData(t)
	dbURL := testpg.For(t, data)
	db, e, err := store{&data, &dbURL}.openEngine()
	if err != nil {
		t.Fatal(err)
	}
	sheets, err := e.List(context.Background(), syncer.Query{Entity: schema.EntSheet, Where: []string{"data ->> 'fingerprint' <> ''"}, Limit: 1})
	e.Close()
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(sheets) == 0 {
		t.Fatal("the demo company has no signed feedback sheet to print")
	}
	sh := sheets[0]
	out := filepath.Join(t.TempDir(), "sheet.pdf")
	if err := cmdPDF([]string{"sheet", sh.Str("id"), "--data", data, "-o", out, "--base-url", "https://svc.example.com"}); err != nil {
		t.Fatal(err)
	}
	pages, text := pdfInfo(t, out)
	if pages != "1" || !strings.Contains(strings.Join(strings.Fields(text), ""), sh.Str("signer_name")) {
		t.Errorf("sheet %s: %s pages, text:\n%s", sh.Str("id"), pages, text)
	}
	list, err := exec.Command("pdfimages", "-list", out).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "image") {
		t.Errorf("pdfimages: %v, want the signature images:\n%s", err, list)
	}
}
