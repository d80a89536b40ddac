package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	mobileapi "fieldsync/mobile-api"
	syncer "fieldsync/sync"
)

func init() {
	extraCommands = append(extraCommands, command{"pdf", "pdf form|sheet|blank ID --data DIR -o FILE   render a PDF", cmdPDF})
}

// cmdPDF renders a document from the data folder: the pre-filled form of a ticket (by id or
// number), a feedback sheet, or the blank form. The file is written only when the whole PDF
// rendered, through a temporary file renamed into place, so a failure never leaves a
// broken PDF behind.
func cmdPDF(args []string) error {
	const synopsis = "pdf form|sheet|blank [ID] --data DIR -o FILE [--lang zh|en|both] [--base-url URL]"
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fs := newFlags("pdf", synopsis)
		fs.Usage()
		if len(args) == 0 {
			return errors.New("name the document: form, sheet or blank")
		}
		return nil
	}
	kind, args := args[0], args[1:]
	var id string
	switch kind {
	case "form", "sheet":
		if len(args) == 0 || len(args[0]) == 0 || args[0][0] == '-' {
			return fmt.Errorf("pdf %s needs the %s id: fieldsync %s", kind, map[string]string{"form": "ticket", "sheet": "feedback sheet"}[kind], synopsis)
		}
		id, args = args[0], args[1:]
	case "blank":
	default:
		return fmt.Errorf("unknown document %q: form, sheet or blank", kind)
	}
	fs := newFlags("pdf "+kind, synopsis)
	st := storeFlags(fs)
	out := fs.String("o", "", "the PDF file to write")
	lang := fs.String("lang", "", "labels: zh, en or both (default: the pdf_lang setting)")
	baseURL := fs.String("base-url", os.Getenv("FIELDSYNC_BASE_URL"), "the server's public URL, for the verify link in a sheet's QR code (env FIELDSYNC_BASE_URL; default: the public_url setting)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags come after the id)", fs.Arg(0))
	}
	if *out == "" {
		return errors.New("-o FILE is required")
	}
	db, e, err := st.openEngine()
	if err != nil {
		return err
	}
	defer db.Close()
	defer e.Close()
	l, err := mobileapi.PDFLang(e, *lang)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var pdf []byte
	switch kind {
	case "form":
		pdf, _, err = mobileapi.FormPDF(ctx, e, id, l)
	case "blank":
		pdf, _, err = mobileapi.BlankFormPDF(e, l)
	case "sheet":
		blobs, berr := syncer.OpenBlobStoreIn(db, filepath.Join(*st.data, "blobs"), e.Settings().Int("blob_max_bytes"))
		if berr != nil {
			return berr
		}
		defer blobs.Close()
		e.Blobs = blobs
		if *baseURL == "" {
			*baseURL = e.Settings().String("public_url")
		}
		if *baseURL == "" {
			fmt.Fprintln(os.Stderr, "fieldsync pdf: no --base-url and no public_url setting: the QR code carries the ticket number instead of the verify link")
		}
		pdf, _, err = mobileapi.SheetPDF(ctx, e, id, *baseURL, l)
	}
	if err != nil {
		return err
	}
	return writeFileAtomic(*out, pdf)
}

// writeFileAtomic writes b to a temporary file next to path and renames it into place.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".fieldsync-pdf-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
