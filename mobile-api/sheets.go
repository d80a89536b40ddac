package mobileapi

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"fieldsync/reports"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// sheetRoutes registers the device's sheet documents.
func (a *API) sheetRoutes(dev fiber.Router) {
	dev.Get("/sheets/:id.pdf", a.sheetPDF)
}

// sheetPDF serves a feedback sheet in the device's scope as a PDF. A sheet outside the
// scope answers 404 like one that does not exist, so a phone cannot probe for sheet ids.
func (a *API) sheetPDF(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	lang, err := PDFLang(a.e, c.Query("lang"))
	if err != nil {
		return err
	}
	ok, err := a.e.InScope(c.UserContext(), sess(c).Actor, schema.EntSheet, id)
	if err != nil {
		return err
	}
	if !ok {
		return schema.Errorf(schema.CodeNotFound, "no feedback sheet %q in your scope", id)
	}
	pdf, name, err := SheetPDF(c.UserContext(), a.e, id, a.e.Settings().String("public_url"), lang)
	if err != nil {
		return err
	}
	return SendPDF(c, pdf, name)
}

// The PDF documents are built here rather than in package server because both the
// coordinator API (server), the device API (this package) and the command line need them,
// and server imports this package, not the other way round. Records are read through the
// engine and mapped to the plain types of package reports by pure functions (formData,
// sheetData) that the tests drive with hand-built records.

// PDFLang returns the label language of a document: the ?lang= override q when given
// (zh, en or both), otherwise the pdf_lang setting. A bad q is a validation error naming
// lang.
func PDFLang(e *syncer.Engine, q string) (reports.Lang, error) {
	if q == "" {
		q = e.Settings().String("pdf_lang")
		if q == "" {
			return reports.LangBoth, nil
		}
	}
	switch l := reports.Lang(q); l {
	case reports.LangZH, reports.LangEN, reports.LangBoth:
		return l, nil
	}
	return "", schema.FieldError(schema.CodeValidation, "lang", "lang %q is not one of zh, en, both", q)
}

// FormPDF renders the pre-filled feedback form of a ticket (by id, or by its number such
// as SR-202611-0042) and returns the PDF with a file name for it.
func FormPDF(ctx context.Context, e *syncer.Engine, ticket string, lang reports.Lang) ([]byte, string, error) {
	t, err := findTicket(ctx, e, ticket)
	if err != nil {
		return nil, "", err
	}
	refs, err := loadRefs(ctx, e, t)
	if err != nil {
		return nil, "", err
	}
	f := formData(t, refs.customer, refs.site, refs.asset, e.Settings(), lang)
	tech, err := optional(ctx, e, schema.EntUser, t.Str("assignee_id"))
	if err != nil {
		return nil, "", err
	}
	f.AssignedTechnician = tech.Str("name")
	var b bytes.Buffer
	if err := reports.RenderForm(&b, f, reports.Options{Lang: lang, Now: e.Now}); err != nil {
		return nil, "", fmt.Errorf("render the form of ticket %s: %w", t.Str("number"), err)
	}
	return b.Bytes(), fileStem(t.Str("number"), t.Str("id")) + "-form.pdf", nil
}

// BlankFormPDF renders the blank feedback form (no ticket), for a technician who goes out
// without a phone. reports prints it without the company header: RenderForm takes company
// details only together with a ticket's.
func BlankFormPDF(e *syncer.Engine, lang reports.Lang) ([]byte, string, error) {
	var b bytes.Buffer
	if err := reports.RenderForm(&b, nil, reports.Options{Lang: lang, Now: e.Now}); err != nil {
		return nil, "", fmt.Errorf("render the blank form: %w", err)
	}
	return b.Bytes(), "feedback-form-blank.pdf", nil
}

// SheetPDF renders a feedback sheet with its signature and stamp images. baseURL (e.g.
// https://service.example.com) makes the QR code's link to the public verify page
// (/verify/{sheet id}/{fingerprint}) absolute; without it the QR code carries the ticket
// number. The HTTP handlers pass the public_url setting, never the request's Host, which
// the client chooses.
func SheetPDF(ctx context.Context, e *syncer.Engine, sheetID, baseURL string, lang reports.Lang) ([]byte, string, error) {
	sh, err := e.Get(ctx, schema.EntSheet, sheetID)
	if err != nil {
		return nil, "", err
	}
	t, err := e.Get(ctx, schema.EntTicket, sh.Str("ticket_id"))
	if err != nil {
		return nil, "", fmt.Errorf("feedback sheet %s: its ticket %q: %w", sheetID, sh.Str("ticket_id"), err)
	}
	refs, err := loadRefs(ctx, e, t)
	if err != nil {
		return nil, "", err
	}
	tech, err := optional(ctx, e, schema.EntUser, sh.Str("technician_id"))
	if err != nil {
		return nil, "", err
	}
	s, err := sheetData(sh, t, refs.customer, refs.site, refs.asset, tech, e.Settings(), lang,
		verifyURL(baseURL, sheetID, sh.Str("fingerprint")), blobReader(e))
	if err != nil {
		return nil, "", err
	}
	if sh.Str("seal") != "" {
		v, err := e.VerifySheet(ctx, sheetID, sh.Str("fingerprint"))
		if err != nil {
			return nil, "", err
		}
		s.Device = deviceSignature(v)
	}
	if sh.Bool("exception_accepted") {
		by, err := optional(ctx, e, schema.EntUser, sh.Str("exception_by"))
		if err != nil {
			return nil, "", err
		}
		s.ExceptionBy = cmp.Or(by.Str("name"), sh.Str("exception_by"))
		s.ExceptionAt = timePtr(sh, "exception_at")
		s.ExceptionNote = cmp.Or(sh.Str("exception_note"), sh.Str("absent_reason"))
	}
	var b bytes.Buffer
	if err := reports.RenderSheet(&b, s, reports.Options{Lang: lang, Now: e.Now}); err != nil {
		return nil, "", fmt.Errorf("render feedback sheet %s: %w", sheetID, err)
	}
	return b.Bytes(), fileStem(t.Str("number"), t.Str("id")) + "-sheet-" + shortID(sheetID) + ".pdf", nil
}

// verifyURL is the public verify page of a sheet, /verify/{id}/{fingerprint}, under
// baseURL; "" without a base URL. The verify page checks a fingerprint given in the URL
// against the stored one, so the QR code on a printed copy proves that copy, not only the
// sheet's id.
func verifyURL(baseURL, id, fingerprint string) string {
	if baseURL == "" {
		return ""
	}
	u := strings.TrimRight(baseURL, "/") + "/verify/" + url.PathEscape(id)
	if fingerprint != "" {
		u += "/" + url.PathEscape(fingerprint)
	}
	return u
}

// SendPDF answers with a rendered PDF: its type, an inline disposition with the file name,
// and no caching by shared proxies (the documents carry customers' details).
func SendPDF(c *fiber.Ctx, pdf []byte, filename string) error {
	c.Set(fiber.HeaderContentType, "application/pdf")
	c.Set(fiber.HeaderContentDisposition, ContentDisposition(filename))
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return c.Send(pdf)
}

// ContentDisposition returns an inline Content-Disposition for filename: a plain ASCII
// filename= for every client, and an RFC 5987 filename* with the exact UTF-8 name when the
// name has anything else in it.
func ContentDisposition(filename string) string {
	safe := asciiName(filename)
	v := `inline; filename="` + safe + `"`
	if safe != filename {
		v += "; filename*=UTF-8''" + rfc5987(filename)
	}
	return v
}

// asciiName keeps letters, digits, dot, dash and underscore, and replaces anything else
// (spaces, quotes, slashes, non-ASCII) with an underscore.
func asciiName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "document.pdf"
	}
	return b.String()
}

// rfc5987 percent-encodes s as an RFC 5987 value-chars string.
func rfc5987(s string) string {
	const attr = "!#$&+-.^_`|~"
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(attr, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// fileStem is the start of a document's file name: the ticket number, or its id when it
// has none.
func fileStem(number, id string) string {
	if number != "" {
		return number
	}
	return "ticket-" + shortID(id)
}

// shortID is the first 8 characters of an id, enough to tell a ticket's sheets apart.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// FindTicket reads a ticket by id or, failing that, by its number (what the printed form's
// QR code carries).
func FindTicket(ctx context.Context, e *syncer.Engine, key string) (schema.Doc, error) {
	return findTicket(ctx, e, key)
}

// findTicket reads a ticket by id or, failing that, by its number.
func findTicket(ctx context.Context, e *syncer.Engine, key string) (schema.Doc, error) {
	t, err := e.Get(ctx, schema.EntTicket, key)
	if err == nil || schema.ErrorCode(err) != schema.CodeNotFound {
		return t, err
	}
	list, lerr := e.List(ctx, syncer.Query{Entity: schema.EntTicket, Where: []string{"data ->> 'number' = ?"}, Args: []any{key}, Limit: 1})
	if lerr != nil {
		return nil, lerr
	}
	if len(list) == 0 {
		return nil, schema.Errorf(schema.CodeNotFound, "no ticket with id or number %q", key)
	}
	return list[0], nil
}

// refs are the records a ticket points at; any of them may be nil.
type refs struct{ customer, site, asset schema.Doc }

func loadRefs(ctx context.Context, e *syncer.Engine, t schema.Doc) (refs, error) {
	var r refs
	var err error
	if r.customer, err = optional(ctx, e, schema.EntCustomer, t.Str("customer_id")); err != nil {
		return r, err
	}
	if r.site, err = optional(ctx, e, schema.EntSite, t.Str("site_id")); err != nil {
		return r, err
	}
	r.asset, err = optional(ctx, e, schema.EntAsset, t.Str("asset_id"))
	return r, err
}

// optional reads a referenced record; no id or a deleted record gives nil, so its boxes
// print empty.
func optional(ctx context.Context, e *syncer.Engine, entity, id string) (schema.Doc, error) {
	if id == "" {
		return nil, nil
	}
	d, err := e.Get(ctx, entity, id)
	if schema.ErrorCode(err) == schema.CodeNotFound {
		return nil, nil
	}
	return d, err
}

// blobReader reads whole blobs from the engine's store.
func blobReader(e *syncer.Engine) func(sum string) ([]byte, error) {
	return func(sum string) ([]byte, error) {
		if e.Blobs == nil {
			return nil, fmt.Errorf("blob %s: no blob store is open", sum)
		}
		r, _, _, err := e.Blobs.Open(sum)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
}

// companyData is the header and footer every document carries, from the settings.
func companyData(st *schema.Settings) reports.FormData {
	return reports.FormData{
		CompanyName:    st.String("company_name"),
		Hotline:        st.String("hotline"),
		ComplaintLine:  st.String("complaint_line"),
		CommitmentText: st.String("commitment_text"),
		Location:       st.Location(),
	}
}

// formData maps a ticket and the records it references to the form's fields. customer,
// site and asset may be nil. Enumeration codes are translated to the codes package reports
// prints as labels, or to labels in lang where it has none.
func formData(t, customer, site, asset schema.Doc, st *schema.Settings, lang reports.Lang) *reports.FormData {
	f := companyData(st)
	f.Number = t.Str("number")
	f.ReceivedAt = t.Time("received_at")
	if f.ReceivedAt.IsZero() {
		f.ReceivedAt = t.Time("created_at")
	}
	f.Source = t.Str("source")
	f.ServiceMode = cmp.Or(t.Str("actual_service_mode"), t.Str("service_mode"))
	f.ServiceType = t.Str("service_type")
	f.Urgency = t.Str("urgency")
	f.Warranty = t.Str("warranty")
	f.Chargeable = t.Bool("chargeable")

	f.Customer = customer.Str("name")
	contactName, contactPhone := siteContact(site, t.Str("contact_name"))
	f.ContactName = cmp.Or(t.Str("contact_name"), contactName)
	f.ContactPhone = cmp.Or(t.Str("contact_phone"), contactPhone, customer.Str("phone"))
	f.SiteAddress = cmp.Or(t.Str("address"), site.Str("address"), customer.Str("address"))
	if n := site.Str("name"); n != "" && f.SiteAddress == site.Str("address") {
		// The site's own address: its name (a building, a plant) tells the technician where.
		f.SiteAddress += " (" + n + ")"
	}
	f.AssetModel = asset.Str("model")
	f.AssetSerial = asset.Str("serial")
	f.WarrantyUntil = asset.Str("warranty_until")
	f.ReportedSymptoms, f.AgreedHandling = t.Str("fault_symptoms"), t.Str("agreed_handling")
	return &f
}

// siteContact returns the site contact named name, or the site's first contact.
func siteContact(site schema.Doc, name string) (string, string) {
	list, _ := site["contacts"].([]any)
	var first schema.Doc
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		c := schema.Doc(m)
		if first == nil {
			first = c
		}
		if name != "" && c.Str("name") == name {
			return c.Str("name"), c.Str("phone")
		}
	}
	if name != "" && first != nil && first.Str("name") != name {
		// The ticket names someone else: the site contact's phone is not theirs.
		return "", ""
	}
	return first.Str("name"), first.Str("phone")
}

// sheetData maps a feedback sheet, its ticket, the ticket's references and the technician
// to the sheet document. Any of customer, site, asset and technician may be nil. blob reads
// a signature or stamp image by its SHA-256; a referenced image that cannot be read is an
// error (the write path only accepts references to blobs held whole, so it means damage to
// the store), never a silently empty box on a sealed document.
func sheetData(sheet, ticket, customer, site, asset, technician schema.Doc, st *schema.Settings, lang reports.Lang,
	verifyURL string, blob func(sum string) ([]byte, error)) (*reports.SheetData, error) {
	s := &reports.SheetData{FormData: *formData(ticket, customer, site, asset, st, lang)}
	if m := sheet.Str("service_mode"); m != "" {
		s.ServiceMode = m
	}
	s.SheetID = sheet.Str("id")
	s.Status = sheet.Str("status")
	s.Technician = technician.Str("name")
	s.ArrivedAt = timePtr(sheet, "arrived_at")
	s.DepartedAt = timePtr(sheet, "departed_at")
	s.FaultSymptoms = sheet.Str("fault_symptoms")
	s.InspectionRecord = sheet.Str("inspection_record")
	s.HandlingResult = sheet.Str("handling_result")
	parts, _ := sheet["parts"].([]any)
	for _, x := range parts {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		p := schema.Doc(m)
		s.Parts = append(s.Parts, reports.PartLine{Item: p.Str("item"), Quantity: int(p.Int("quantity")),
			SerialRemoved: p.Str("serial_removed"), SerialFitted: p.Str("serial_fitted")})
	}
	s.LabourFen = sheet.Int("labour_fen")
	s.PartsFen = sheet.Int("parts_fen")
	s.ShippingFen = sheet.Int("shipping_fen")
	s.Rating = int(sheet.Int("rating"))
	s.RatingComment = sheet.Str("rating_comment")
	s.SignerName = sheet.Str("signer_name")
	if r := sheet.Str("absent_reason"); r != "" && s.RatingComment == "" {
		s.RatingComment = r
	}
	for _, img := range []struct {
		field string
		dst   *[]byte
	}{{"signature_blob", &s.Signature}, {"stamp_blob", &s.Stamp}, {"technician_signature_blob", &s.TechnicianSignature}} {
		sum := sheet.Str(img.field)
		if sum == "" {
			continue
		}
		b, err := blob(sum)
		if err != nil {
			return nil, fmt.Errorf("feedback sheet %s: %s %s: %w", s.SheetID, img.field, sum, err)
		}
		*img.dst = b
	}
	if sheet.Str("origin") == schema.OriginPaper {
		s.PaperEnteredBy = sheet.Str("entered_by_name")
		for i, sum := range sheet.Strings("scan_blobs") {
			b, err := blob(sum)
			if err != nil {
				return nil, fmt.Errorf("feedback sheet %s: scan page %d %s: %w", s.SheetID, i+1, sum, err)
			}
			if bytes.HasPrefix(b, []byte("%PDF-")) {
				b = nil // named on its page, not drawn
			}
			s.Scans, s.ScanSums = append(s.Scans, b), append(s.ScanSums, sum)
		}
	}
	s.SignedAt = timePtr(sheet, "signed_at")
	s.ServerReceivedAt = timePtr(sheet, "received_at")
	s.Complete = sheet.Bool("complete")
	s.Missing = sheet.Strings("missing")
	s.Fingerprint = sheet.Str("fingerprint")
	s.VerifyURL = verifyURL
	return s, nil
}

// timePtr returns the time field k, or nil when it is absent or not a time.
func timePtr(d schema.Doc, k string) *time.Time {
	t := d.Time(k)
	if t.IsZero() {
		return nil
	}
	return &t
}

// deviceSignature is the verify answer's account of the phone's signature, as the sealed
// sheet prints it.
func deviceSignature(v *syncer.SheetVerdict) *reports.DeviceSignature {
	d := &reports.DeviceSignature{Signed: v.DeviceSigned, Valid: v.DeviceValid, ChainGap: v.DeviceChainGap,
		User: v.DeviceUser, Device: v.DeviceName, ClockFlag: v.ClockFlag}
	doc := schema.Doc{"at": v.DeviceTime, "revoked": v.DeviceRevokedAt}
	d.At, d.RevokedAt = timePtr(doc, "at"), timePtr(doc, "revoked")
	if v.DeviceClockOffsetMS != nil {
		off := time.Duration(*v.DeviceClockOffsetMS) * time.Millisecond
		d.ClockOffset = &off
	}
	return d
}
