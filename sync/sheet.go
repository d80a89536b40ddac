package sync

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"fieldsync/schema"
)

// The feedback sheet rules of the write path: who may create and edit a sheet, which images
// it may reference, signing (completeness, fingerprint, seal, chain), and the coordinator's
// receive, return and accept_exception. docs/feedback-sheets.md explains them.

var sheetOffice = []string{schema.RoleCoordinator, schema.RoleAdmin}

// sheetTicket returns the ticket a technician's sheet is for, checking that the ticket is in
// their scope, assigned to them and not cancelled.
func (w *wtx) sheetTicket(actor schema.Actor, ticketID string) (schema.Doc, error) {
	if !w.inScope(actor.UserID, schema.EntTicket, ticketID) {
		return nil, schema.FieldError(schema.CodeOutOfScope, "ticket_id", "ticket %q is not in your scope: a sheet is written for a ticket assigned to you", ticketID)
	}
	t, err := w.Get(schema.EntTicket, ticketID)
	if err != nil {
		return nil, err
	}
	if t.Str("status") == schema.StCancelled {
		return nil, &schema.Error{Code: schema.CodeTicketCancelled, Field: "ticket_id", Record: t,
			Message: fmt.Sprintf("ticket %s was cancelled (%s): it takes no feedback sheet", t.Str("number"), t.Str("cancel_reason"))}
	}
	if t.Str("assignee_id") != actor.UserID {
		return nil, schema.FieldError(schema.CodeForbidden, "ticket_id", "ticket %s is not assigned to you: only its technician writes its feedback sheet", t.Str("number"))
	}
	return t, nil
}

func (w *wtx) onSheetCreate(actor schema.Actor, d schema.Doc) error {
	if schema.SideOf(actor.Role) == schema.SideOffice {
		return w.enterPaperSheet(actor, d)
	}
	for _, k := range []string{"scan_blobs", "signature_present", "stamp_present", "technician_signature_present"} {
		delete(d, k) // office fields: decodeFields already refused them from a technician
	}
	d["origin"] = schema.OriginDevice
	t, err := w.sheetTicket(actor, d.Str("ticket_id"))
	if err != nil {
		return err
	}
	switch st := t.Str("status"); st {
	case schema.StAccepted, schema.StEnRoute, schema.StOnSite, schema.StCompleted:
	case schema.StSheetReceived, schema.StFollowedUp:
		if d.Str("supersedes_id") == "" {
			return &schema.Error{Code: schema.CodeInvalidTransition, Field: "ticket_id", Record: t,
				Message: fmt.Sprintf("ticket %s is %s: its sheet was received; only a correction (supersedes_id) may be added", t.Str("number"), st)}
		}
	default:
		return &schema.Error{Code: schema.CodeInvalidTransition, Field: "ticket_id", Record: t,
			Message: fmt.Sprintf("ticket %s is %s: a feedback sheet is written once the ticket is accepted and before it is closed", t.Str("number"), st)}
	}
	if id := d.Str("supersedes_id"); id != "" {
		if err := w.checkSupersedes(actor, d, id); err != nil {
			return err
		}
	}
	var n int64
	if err := w.tx.QueryRow(`SELECT COUNT(*) FROM records WHERE entity = 'feedback_sheet' AND ticket_id = ?`, t.Str("id")).Scan(&n); err != nil {
		return err
	}
	d["number"] = fmt.Sprintf("%s/%d", t.Str("number"), n+1)
	d["technician_id"] = actor.UserID
	d["status"] = schema.SheetDraft
	if d.Str("service_mode") == "" {
		d["service_mode"] = cmp.Or(t.Str("actual_service_mode"), t.Str("service_mode"))
	}
	if d["parts"] == nil {
		d["parts"] = []any{}
	}
	if err := w.snapshotNames(actor.UserID, t, d); err != nil {
		return err
	}
	if err := w.checkSheetContent(t, d, d); err != nil {
		return err
	}
	w.sheetCompleteness(d)
	return nil
}

// checkSupersedes checks that sheet old may be corrected by the new sheet d: same ticket,
// same technician, sealed and not yet corrected.
func (w *wtx) checkSupersedes(actor schema.Actor, d schema.Doc, oldID string) error {
	old, err := w.Get(schema.EntSheet, oldID)
	if err != nil {
		return schema.FieldError(schema.CodeValidation, "supersedes_id", "supersedes_id %q: no such feedback sheet", oldID)
	}
	if old.Str("ticket_id") != d.Str("ticket_id") {
		return schema.FieldError(schema.CodeValidation, "supersedes_id", "sheet %s belongs to another ticket", old.Str("number"))
	}
	if old.Str("technician_id") != actor.UserID {
		return schema.FieldError(schema.CodeForbidden, "supersedes_id", "sheet %s is another technician's: only its author corrects it", old.Str("number"))
	}
	switch old.Str("status") {
	case schema.SheetSigned, schema.SheetReturned:
	case schema.SheetDraft:
		return &schema.Error{Code: schema.CodeInvalidTransition, Field: "supersedes_id", Record: old,
			Message: fmt.Sprintf("sheet %s is a draft: edit it instead of correcting it", old.Str("number"))}
	default:
		return &schema.Error{Code: schema.CodeInvalidTransition, Field: "supersedes_id", Record: old,
			Message: fmt.Sprintf("sheet %s is %s: only a signed or returned sheet can be corrected", old.Str("number"), old.Str("status"))}
	}
	var other string
	err = w.tx.QueryRow(`SELECT id FROM records WHERE entity = 'feedback_sheet' AND ticket_id = ? AND data ->> 'supersedes_id' = ? AND id != ? AND status != 'void' LIMIT 1`,
		d.Str("ticket_id"), oldID, d.Str("id")).Scan(&other)
	if err == nil {
		return &schema.Error{Code: schema.CodeInvalidTransition, Field: "supersedes_id", Record: old,
			Message: fmt.Sprintf("sheet %s already has a correction (%s): edit that one", old.Str("number"), other)}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return nil
}

// snapshotNames copies the names printed on the sheet into it, so the sealed sheet shows
// them as they were when the customer signed.
func (w *wtx) snapshotNames(technician string, t, d schema.Doc) error {
	d["ticket_number"] = t.Str("number")
	if c, err := w.Get(schema.EntCustomer, t.Str("customer_id")); err == nil {
		d["customer_name"] = c.Str("name")
	}
	u, err := w.Get(schema.EntUser, technician)
	if err != nil {
		return err
	}
	d["technician_name"] = u.Str("name")
	return nil
}

func (w *wtx) sheetCompleteness(d schema.Doc) {
	complete, missing := schema.SheetCompleteness(schema.PaperView(d), w.Settings().List(schema.SheetRequiredSetting(d.Str("service_mode"))))
	list := make([]any, len(missing))
	for i, m := range missing {
		list[i] = m
	}
	d["complete"], d["missing"] = complete, list
}

// checkSheetContent checks the values a technician wrote (changed) into sheet d of ticket t:
// images held whole and acceptable, location, fees only on a chargeable ticket, times in order.
func (w *wtx) checkSheetContent(t, d, changed schema.Doc) error {
	for _, f := range schema.SheetBlobFields {
		if _, ok := changed[f]; !ok || d.Str(f) == "" {
			continue
		}
		if _, err := w.checkBlob(f, d.Str(f)); err != nil {
			return err
		}
	}
	if _, ok := changed["location"]; ok {
		if err := schema.CheckLocation(d.Str("location")); err != nil {
			return err
		}
	}
	if !t.Bool("chargeable") {
		for _, f := range []string{"labour_fen", "parts_fen", "shipping_fen"} {
			if _, ok := changed[f]; ok && d.Int(f) != 0 {
				return schema.FieldError(schema.CodeValidation, f, "ticket %s is not chargeable: %s stays 0 (ask the coordinator to mark it chargeable first)", t.Str("number"), f)
			}
		}
	}
	if a, dep := d.Time("arrived_at"), d.Time("departed_at"); !a.IsZero() && !dep.IsZero() && dep.Before(a) {
		return schema.FieldError(schema.CodeValidation, "departed_at", "departed_at %s is before arrived_at %s", d.Str("departed_at"), d.Str("arrived_at"))
	}
	return nil
}

// checkBlob checks that the image named by field is held whole, is an image, and is within
// the size limit; it returns the SHA-256 of the content actually held.
func (w *wtx) checkBlob(field, sum string) (string, error) {
	if !schema.ValidBlobSum(sum) {
		return "", schema.FieldError(schema.CodeValidation, field, "%s %q is not a SHA-256 (64 lower-case hex digits)", field, sum)
	}
	blobs := w.e.Blobs
	if blobs == nil {
		return "", schema.Errorf(schema.CodeUnavailable, "this server keeps no blobs")
	}
	if !blobs.Has(sum) {
		return "", schema.FieldError(schema.CodeMissingBlob, field, "the image %s (%s) is not uploaded whole yet: upload it, then send this again", sum, field)
	}
	actual, size, typ, err := hashBlob(blobs, sum)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(typ, "image/") {
		return "", schema.FieldError(schema.CodeUnsupportedMedia, field, "%s %s is not a PNG, JPEG or WebP image", field, sum)
	}
	if limit := w.Settings().Int("blob_max_bytes"); size > limit {
		return "", schema.FieldError(schema.CodeTooLarge, field, "%s %s is %d bytes, over the limit of %d bytes", field, sum, size, limit)
	}
	if size == 0 {
		return "", schema.FieldError(schema.CodeValidation, field, "%s %s is empty", field, sum)
	}
	return actual, nil
}

// hashBlob re-hashes a stored blob and returns the SHA-256 of its content, its size and type.
func hashBlob(blobs *BlobStore, sum string) (string, int64, string, error) {
	r, size, typ, err := blobs.Open(sum)
	if err != nil {
		return "", 0, "", err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", 0, "", fmt.Errorf("blob %s: %w", sum, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, typ, nil
}

func (w *wtx) onSheetUpdate(actor schema.Actor, cur, next, changed schema.Doc) error {
	if cur.Str("technician_id") != actor.UserID {
		return schema.Errorf(schema.CodeForbidden, "sheet %s is another technician's", cur.Str("number"))
	}
	if st := cur.Str("status"); st != schema.SheetDraft {
		return sealedError(cur)
	}
	t, err := w.sheetTicket(actor, cur.Str("ticket_id"))
	if err != nil {
		return err
	}
	if err := w.checkSheetContent(t, next, changed); err != nil {
		return err
	}
	w.sheetCompleteness(next)
	return nil
}

func sealedError(cur schema.Doc) error {
	msg := fmt.Sprintf("sheet %s was signed at %s and is sealed: it cannot change; submit a correction (a new sheet with supersedes_id %s)",
		cur.Str("number"), cur.Str("signed_at"), cur.Str("id"))
	if cur.Str("status") == schema.SheetVoid {
		msg = fmt.Sprintf("sheet %s is void (corrected by %s): it cannot change", cur.Str("number"), cur.Str("superseded_by"))
	}
	return &schema.Error{Code: schema.CodeSealed, Record: cur, Message: msg}
}

// sheetParams lists the parameters each sheet action takes; others are refused.
var sheetParams = map[string][]string{
	schema.SheetSign:            {"signed_at", "at", "device_time", "device_prev_signature", "device_signature"},
	schema.SheetReceive:         {"note"},
	schema.SheetReturn:          {"reason"},
	schema.SheetAcceptException: {"note"},
}

func (w *wtx) sheetAction(actor schema.Actor, cur schema.Doc, action string, params schema.Doc) (schema.Doc, []schema.Effect, error) {
	allowed, ok := sheetParams[action]
	if !ok {
		return nil, nil, schema.FieldError(schema.CodeValidation, "action", "unknown feedback sheet action %q (sign, receive, return, accept_exception)", action)
	}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if !slices.Contains(allowed, k) {
			return nil, nil, schema.FieldError(schema.CodeValidation, k, "%s takes no parameter %q", action, k)
		}
	}
	if action == schema.SheetSign {
		next, err := w.signSheet(actor, cur, params)
		return next, nil, err
	}
	if action == schema.SheetAcceptException {
		// Making an incomplete sheet count is the department manager's decision (P6).
		if actor.Role != schema.RoleManager && actor.Role != schema.RoleAdmin {
			return nil, nil, schema.Errorf(schema.CodeForbidden, "接受不完整的反馈单由部门经理决定 / accepting an incomplete sheet is the manager's decision, not a %s's", actor.Role)
		}
	} else if !slices.Contains(sheetOffice, actor.Role) {
		return nil, nil, schema.Errorf(schema.CodeForbidden, "a %s may not %s a feedback sheet (coordinator, admin)", actor.Role, action)
	}
	now := schema.Stamp(w.now)
	next := cur.Clone()
	st := cur.Str("status")
	notSigned := func() error {
		return &schema.Error{Code: schema.CodeInvalidTransition, Record: cur,
			Message: fmt.Sprintf("cannot %s sheet %s: it is %s", action, cur.Str("number"), st)}
	}
	switch action {
	case schema.SheetReceive:
		if st != schema.SheetSigned {
			return nil, nil, notSigned()
		}
		t, err := w.Get(schema.EntTicket, cur.Str("ticket_id"))
		if err != nil {
			return nil, nil, err
		}
		if t.Str("status") == schema.StCancelled {
			return nil, nil, &schema.Error{Code: schema.CodeTicketCancelled, Record: t,
				Message: fmt.Sprintf("ticket %s was cancelled: its sheet cannot be received", t.Str("number"))}
		}
		next["status"] = schema.SheetReceived
		next["coordinator_received_at"], next["coordinator_received_by"] = now, actor.UserID
		var effects []schema.Effect
		if t.Str("status") == schema.StCompleted {
			effects = append(effects, schema.Effect{Entity: schema.EntTicket, ID: t.Str("id"), Op: "action", Action: "receive_sheet", Params: schema.Doc{}})
		}
		return next, effects, nil
	case schema.SheetReturn:
		if st != schema.SheetSigned {
			return nil, nil, notSigned()
		}
		reason := strings.TrimSpace(params.Str("reason"))
		if reason == "" {
			return nil, nil, schema.FieldError(schema.CodeValidation, "reason", "return needs a reason the technician will read")
		}
		if n := len([]rune(reason)); n > schema.MaxText {
			return nil, nil, schema.FieldError(schema.CodeValidation, "reason", "reason is %d characters long; at most %d", n, schema.MaxText)
		}
		next["status"] = schema.SheetReturned
		next["returned_reason"], next["returned_at"], next["returned_by"] = reason, now, actor.UserID
		return next, nil, nil
	case schema.SheetAcceptException:
		if st != schema.SheetSigned && st != schema.SheetReceived {
			return nil, nil, notSigned()
		}
		if cur.Bool("complete") {
			return nil, nil, &schema.Error{Code: schema.CodeInvalidTransition, Record: cur,
				Message: fmt.Sprintf("sheet %s is complete: there is no exception to accept", cur.Str("number"))}
		}
		if cur.Bool("exception_accepted") {
			return nil, nil, &schema.Error{Code: schema.CodeInvalidTransition, Record: cur,
				Message: fmt.Sprintf("the exception of sheet %s was already accepted at %s", cur.Str("number"), cur.Str("exception_at"))}
		}
		note := strings.TrimSpace(params.Str("note"))
		if note == "" && strings.TrimSpace(cur.Str("absent_reason")) == "" {
			return nil, nil, schema.FieldError(schema.CodeValidation, "note", "sheet %s records no absent_reason: give a note saying why the exception is accepted", cur.Str("number"))
		}
		next["exception_accepted"], next["exception_note"], next["exception_by"], next["exception_at"] = true, note, actor.UserID, now
		return next, nil, nil
	}
	return nil, nil, schema.FieldError(schema.CodeValidation, "action", "unknown feedback sheet action %q", action)
}

// signSheet seals a draft: completeness, the names printed on it, the device's and the
// server's times, the chain link to the technician's previous sealed sheet, the fingerprint
// over the content and the re-hashed images, and the seal. A correction voids the sheet it
// supersedes in the same transaction.
func (w *wtx) signSheet(actor schema.Actor, cur schema.Doc, params schema.Doc) (schema.Doc, error) {
	if actor.Role != schema.RoleTechnician || cur.Str("technician_id") != actor.UserID {
		return nil, schema.Errorf(schema.CodeForbidden, "only the technician who wrote sheet %s signs it, on their device", cur.Str("number"))
	}
	switch st := cur.Str("status"); st {
	case schema.SheetDraft:
	case schema.SheetVoid:
		return nil, sealedError(cur)
	default:
		return nil, &schema.Error{Code: schema.CodeAlreadySigned, Record: cur,
			Message: fmt.Sprintf("sheet %s is already signed (at %s, %s): a sheet is signed once; submit a correction to change it", cur.Str("number"), cur.Str("signed_at"), st)}
	}
	if w.e.Sealer == nil {
		return nil, errors.New("sign sheet: the server has no seal key")
	}
	t, err := w.sheetTicket(actor, cur.Str("ticket_id"))
	if err != nil {
		return nil, err
	}
	next := cur.Clone()
	if id := cur.Str("supersedes_id"); id != "" {
		if err := w.checkSupersedes(actor, cur, id); err != nil {
			return nil, err
		}
	}
	sums := map[string]string{}
	for _, f := range schema.SheetBlobFields {
		sum := cur.Str(f)
		if sum == "" {
			continue
		}
		actual, err := w.checkBlob(f, sum)
		if err != nil {
			return nil, err
		}
		if actual != sum {
			return nil, schema.FieldError(schema.CodeHashMismatch, f, "the stored image %s (%s) now hashes to %s: upload it again", sum, f, actual)
		}
		sums[f] = actual
	}
	signedAt := w.now
	for _, k := range []string{"signed_at", "at"} {
		if v, ok := params[k]; ok && v != nil {
			s, _ := v.(string)
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, schema.FieldError(schema.CodeValidation, k, "%s %v is not an RFC 3339 time (e.g. 2026-11-26T09:30:00Z)", k, v)
			}
			signedAt = ts
			break
		}
	}
	if err := w.snapshotNames(actor.UserID, t, next); err != nil {
		return nil, err
	}
	if err := w.noSealedSheet(t, cur.Str("id"), cur.Str("supersedes_id"), true); err != nil {
		return nil, err
	}
	w.sheetCompleteness(next)
	if err := w.deviceSignature(actor, cur, next, params); err != nil {
		return nil, err
	}
	next["signed_at"] = schema.Stamp(signedAt)
	if dt := next.Time("device_time"); !dt.IsZero() {
		next["signed_at"] = schema.Stamp(dt) // the device signed at this time
	}
	next["received_at"] = schema.Stamp(w.now)
	next["status"] = schema.SheetSigned
	if err := w.seal(next, sums); err != nil {
		return nil, err
	}
	if id := cur.Str("supersedes_id"); id != "" {
		old, err := w.Get(schema.EntSheet, id)
		if err != nil {
			return nil, err
		}
		voided := old.Clone()
		voided["status"], voided["superseded_by"], voided["voided_at"] = schema.SheetVoid, cur.Str("id"), schema.Stamp(w.now)
		if _, err := w.write(actor, schema.EntSheet, old, voided, "action", "void", nil); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// seal links sheet d into its technician's chain of sealed sheets, fingerprints it over its
// content and the content hashes of its images (sums), and seals the fingerprint.
func (w *wtx) seal(d schema.Doc, sums map[string]string) error {
	prev, err := w.lastSealed(d.Str("technician_id"))
	if err != nil {
		return err
	}
	d["chain_index"], d["prev_sheet_id"], d["prev_fingerprint"] = schema.Num(1), nil, nil
	if prev != nil {
		d["chain_index"] = schema.Num(prev.Int("chain_index") + 1)
		d["prev_sheet_id"], d["prev_fingerprint"] = prev.Str("id"), prev.Str("fingerprint")
	}
	fp := schema.SheetFingerprint(d, sums)
	d["fingerprint"], d["seal"] = fp, w.e.Sealer.Seal(fp)
	return nil
}

// noSealedSheet refuses a second sealed sheet for ticket t: one from paper when any sheet of
// the ticket is sealed, or a phone's signing (deviceSign) when the office entered the ticket's
// paper sheet. A correction (supersedes) of the sealed sheet is not a second sheet.
func (w *wtx) noSealedSheet(t schema.Doc, self, supersedes string, deviceSign bool) error {
	q := `SELECT data FROM records WHERE entity = 'feedback_sheet' AND deleted = 0 AND ticket_id = ? AND id != ? AND id != ?
		AND status != 'void' AND COALESCE(data ->> 'seal', '') != ''`
	if deviceSign {
		q += ` AND data ->> 'origin' = 'paper'`
	}
	var b []byte
	err := w.tx.QueryRow(q+` LIMIT 1`, t.Str("id"), self, supersedes).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	other, err := schema.DecodeDoc(b)
	if err != nil {
		return err
	}
	how := "手机签署 signed on a phone"
	if other.Str("origin") == schema.OriginPaper {
		how = "纸质录入 entered from paper"
	}
	return &schema.Error{Code: schema.CodeAlreadySigned, Field: "ticket_id", Record: other, Message: fmt.Sprintf(
		"工单 %s 已有封签的反馈单 %s（%s，%s）：一个工单只有一张有效反馈单 / ticket %s already has a sealed feedback sheet %s (%s, %s): a ticket takes one; a second cannot be sealed",
		t.Str("number"), other.Str("number"), how, other.Str("signed_at"), t.Str("number"), other.Str("number"), how, other.Str("signed_at"))}
}

// enterPaperSheet is the create of a sheet by the office: a coordinator types in the paper
// form the customer signed and stamped, with its scan. It is sealed at once with origin
// paper and the coordinator's name, and received (the coordinator holds the paper).
func (w *wtx) enterPaperSheet(actor schema.Actor, d schema.Doc) error {
	if !slices.Contains(sheetOffice, actor.Role) {
		return schema.Errorf(schema.CodeForbidden, "纸质反馈单由专职协调员录入，%s 不能录入 / a paper feedback sheet is entered by a coordinator (or admin), not a %s", actor.Role, actor.Role)
	}
	if w.e.Sealer == nil {
		return errors.New("enter paper sheet: the server has no seal key")
	}
	t, err := w.Get(schema.EntTicket, d.Str("ticket_id"))
	if err != nil {
		return schema.FieldError(schema.CodeValidation, "ticket_id", "没有工单 %q / no ticket %q", d.Str("ticket_id"), d.Str("ticket_id"))
	}
	if err := w.noSealedSheet(t, d.Str("id"), "", false); err != nil {
		return err
	}
	switch st := t.Str("status"); st {
	case schema.StDispatched, schema.StAccepted, schema.StEnRoute, schema.StOnSite, schema.StCompleted:
	case schema.StCancelled:
		return &schema.Error{Code: schema.CodeTicketCancelled, Field: "ticket_id", Record: t, Message: fmt.Sprintf(
			"工单 %s 已取消，不收反馈单 / ticket %s was cancelled (%s): it takes no feedback sheet", t.Str("number"), t.Str("number"), t.Str("cancel_reason"))}
	default:
		return &schema.Error{Code: schema.CodeInvalidTransition, Field: "ticket_id", Record: t, Message: fmt.Sprintf(
			"工单 %s 状态为 %s：纸质反馈单在派工之后、接收反馈单之前录入 / ticket %s is %s: a paper sheet is entered once the ticket is dispatched and before its sheet is received",
			t.Str("number"), st, t.Str("number"), st)}
	}
	tech := cmp.Or(t.Str("completed_by"), t.Str("assignee_id"))
	if tech == "" {
		return schema.FieldError(schema.CodeValidation, "ticket_id", "工单 %s 没有技术员 / ticket %s has no technician: dispatch it first", t.Str("number"), t.Str("number"))
	}
	for _, f := range schema.SheetBlobFields {
		if d.Str(f) != "" {
			return schema.FieldError(schema.CodeValidation, f, "纸质反馈单以扫描件为凭，签字和盖章请勾选“纸上有” / a paper sheet carries its scan: tick %s instead of sending %s", schema.PaperPresence[f], f)
		}
	}
	if d["scan_blobs"] == nil {
		return schema.FieldError(schema.CodeValidation, "scan_blobs", "请上传纸质反馈单的扫描件或照片 / upload the scan or photo of the paper sheet (scan_blobs)")
	}
	sums := map[string]string{}
	for i, sum := range d.Strings("scan_blobs") {
		actual, err := w.checkScan(i, sum)
		if err != nil {
			return err
		}
		sums[schema.ScanKey(i)] = actual
	}
	var n int64
	if err := w.tx.QueryRow(`SELECT COUNT(*) FROM records WHERE entity = 'feedback_sheet' AND ticket_id = ?`, t.Str("id")).Scan(&n); err != nil {
		return err
	}
	u, err := w.Get(schema.EntUser, actor.UserID)
	if err != nil {
		return err
	}
	now := schema.Stamp(w.now)
	d["number"] = fmt.Sprintf("%s/%d", t.Str("number"), n+1)
	d["origin"], d["entered_by"], d["entered_by_name"] = schema.OriginPaper, actor.UserID, u.Str("name")
	d["technician_id"] = tech
	if d.Str("service_mode") == "" {
		d["service_mode"] = cmp.Or(t.Str("actual_service_mode"), t.Str("service_mode"))
	}
	if d["parts"] == nil {
		d["parts"] = []any{}
	}
	if err := w.snapshotNames(tech, t, d); err != nil {
		return err
	}
	if err := w.checkSheetContent(t, d, d); err != nil {
		return err
	}
	for _, f := range []string{"arrived_at", "departed_at"} {
		if at := d.Time(f); at.After(w.now) {
			return schema.FieldError(schema.CodeValidation, f, "%s %s 晚于现在：纸质反馈单记录的是已经发生的服务 / %s %s is in the future: a paper sheet records a service that took place", f, d.Str(f), f, d.Str(f))
		}
	}
	w.sheetCompleteness(d)
	d["signed_at"] = cmp.Or(d.Str("departed_at"), now)
	d["received_at"] = now
	d["status"] = schema.SheetReceived
	d["coordinator_received_at"], d["coordinator_received_by"] = now, actor.UserID
	if err := w.seal(d, sums); err != nil {
		return err
	}
	return nil
}

// afterPaperSheet moves a completed ticket on once its paper sheet is written: the sheet
// was received at entry.
func (w *wtx) afterPaperSheet(actor schema.Actor, d schema.Doc) error {
	t, err := w.Get(schema.EntTicket, d.Str("ticket_id"))
	if err != nil || t.Str("status") != schema.StCompleted {
		return err
	}
	_, err = w.applyAction(actor, schema.EntTicket, t, "receive_sheet", schema.Doc{})
	return err
}

// checkScan checks page i of a paper sheet's scan: held whole, a PNG, JPEG, WebP image or a
// PDF, within the size limit. It returns the SHA-256 of the content held.
func (w *wtx) checkScan(i int, sum string) (string, error) {
	field := "scan_blobs"
	blobs := w.e.Blobs
	if blobs == nil {
		return "", schema.Errorf(schema.CodeUnavailable, "this server keeps no blobs")
	}
	if !blobs.Has(sum) {
		return "", schema.FieldError(schema.CodeMissingBlob, field, "扫描件第 %d 页 %s 尚未完整上传 / page %d of the scan (%s) is not uploaded whole yet: upload it, then send this again", i+1, sum, i+1, sum)
	}
	actual, size, typ, err := hashBlob(blobs, sum)
	if err != nil {
		return "", err
	}
	if typ == "" {
		return "", schema.FieldError(schema.CodeUnsupportedMedia, field, "扫描件第 %d 页不是图片或 PDF / page %d of the scan is not a PNG, JPEG, WebP image or a PDF", i+1, i+1)
	}
	if limit := w.Settings().Int("blob_max_bytes"); size > limit {
		return "", schema.FieldError(schema.CodeTooLarge, field, "扫描件第 %d 页 %d 字节，超过上限 %d / page %d of the scan is %d bytes, over the limit of %d", i+1, size, limit, i+1, size, limit)
	}
	if actual != sum {
		return "", schema.FieldError(schema.CodeHashMismatch, field, "page %d of the scan (%s) now hashes to %s: upload it again", i+1, sum, actual)
	}
	return actual, nil
}

// deviceSignature checks the device's signature of the sheet, when the device registered a
// key, and records it in next: the seal then covers it. A device without a key (an older
// app) signs nothing and its sheet says so. The chain per device is checked here: a
// signature that does not name the device's last accepted one is accepted, flagged
// device_chain_gap (a sheet signed before it never arrived, or was refused).
func (w *wtx) deviceSignature(actor schema.Actor, cur, next, params schema.Doc) error {
	for _, k := range schema.SheetDeviceSealed {
		delete(next, k)
	}
	delete(next, "device_clock_offset_ms")
	if actor.DeviceID == "" {
		return nil
	}
	var key, last sql.NullString
	var offset sql.NullInt64
	err := w.tx.QueryRow(`SELECT public_key, last_signature, clock_offset_ms FROM devices WHERE id = ?`, actor.DeviceID).Scan(&key, &last, &offset)
	if offset.Valid {
		next["device_clock_offset_ms"] = schema.Num(offset.Int64) // as the device last reported it
	}
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !key.Valid) {
		return nil
	} else if err != nil {
		return err
	}
	pub, err := schema.ParseDeviceKey(key.String)
	if err != nil {
		return err
	}
	sig, dt, prev := params.Str("device_signature"), params.Str("device_time"), params.Str("device_prev_signature")
	if sig == "" || dt == "" {
		return schema.FieldError(schema.CodeDeviceSignature, "device_signature",
			"此设备已登记签名密钥，签字须附设备签名 / this device registered a signing key: the sign of sheet %s needs its device_signature and device_time", cur.Str("number"))
	}
	if _, err := time.Parse(time.RFC3339Nano, dt); err != nil {
		return schema.FieldError(schema.CodeValidation, "device_time", "device_time %q is not an RFC 3339 time", dt)
	}
	fp := schema.SheetDeviceFingerprint(cur)
	if !schema.VerifyDeviceSignature(pub, schema.DeviceSignedMessage(fp, dt, prev), sig) {
		return schema.FieldError(schema.CodeDeviceSignature, "device_signature",
			"设备签名与服务器收到的单据内容不符 / the device signature does not match sheet %s as the server holds it (device fingerprint %s): the sheet was changed after signing, or the signature is another sheet's or another device's", cur.Str("number"), fp)
	}
	next["device_fingerprint"], next["device_time"], next["device_signature"], next["device_key"] = fp, dt, sig, key.String
	next["device_prev_signature"] = nil
	if prev != "" {
		next["device_prev_signature"] = prev
	}
	if prev != last.String {
		next["device_chain_gap"] = true
	}
	_, err = w.tx.Exec(`UPDATE devices SET last_signature = ? WHERE id = ?`, sig, actor.DeviceID)
	return err
}

// lastSealed returns the technician's most recently sealed sheet, or nil.
func (w *wtx) lastSealed(technician string) (schema.Doc, error) {
	var b []byte
	err := w.tx.QueryRow(`SELECT data FROM records WHERE entity = 'feedback_sheet' AND technician_id = ?
		AND COALESCE(data ->> 'fingerprint', '') != '' ORDER BY CAST(data ->> 'chain_index' AS INTEGER) DESC LIMIT 1`, technician).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return schema.DecodeDoc(b)
}

// deviceVerdict checks the device's signature of sheet d.
func (v *SheetVerdict) deviceVerdict(d schema.Doc) {
	v.DeviceSig = d.Str("device_signature")
	if d.Str("origin") == schema.OriginPaper {
		v.DeviceNote = "纸质反馈单，无设备签名 / a paper sheet: no device signature"
		return
	}
	if v.DeviceSig == "" {
		v.DeviceNote = "未在设备上签名（旧版应用）/ not signed on the device (an app without device keys)"
		return
	}
	v.DeviceSigned = true
	v.DeviceTime, v.DeviceKey, v.DeviceFP, v.DevicePrev = d.Str("device_time"), d.Str("device_key"), d.Str("device_fingerprint"), d.Str("device_prev_signature")
	v.DeviceChainGap = d.Bool("device_chain_gap")
	pub, err := schema.ParseDeviceKey(v.DeviceKey)
	switch {
	case err != nil:
		v.Reasons = append(v.Reasons, "the device key recorded with the sheet is not a P-256 public key")
	case v.DeviceFP != schema.SheetDeviceFingerprint(d):
		v.Reasons = append(v.Reasons, "the sheet's content was changed after the device signed it")
	case !schema.VerifyDeviceSignature(pub, schema.DeviceSignedMessage(v.DeviceFP, v.DeviceTime, v.DevicePrev), v.DeviceSig):
		v.Reasons = append(v.Reasons, "the device signature is not the device key's signature of the sheet")
	default:
		v.DeviceValid = true
	}
	v.DeviceNote = "设备签名有效 / signed on the device: the signature is valid"
	if !v.DeviceValid {
		v.DeviceNote = "设备签名无效 / signed on the device: the signature is NOT valid"
	}
	if v.DeviceChainGap {
		v.DeviceNote += "；设备签名链有缺口 / a gap in the device's chain: a sheet signed on this device before this one did not reach the server"
	}
}

// signingDevice names the phone that signed sheet d on the device (the device of the sign
// in the change log) and says whether it was revoked since: revocation stops what the phone
// may send from then on; a signature the server accepted before it stays valid.
func (e *Engine) signingDevice(ctx context.Context, v *SheetVerdict, d schema.Doc) error {
	if !v.DeviceSigned {
		return nil
	}
	var user string
	var revoked sql.NullString
	err := e.db.R.QueryRowContext(ctx, `SELECT dv.name, dv.user_id, dv.revoked_at FROM changes c JOIN devices dv ON dv.id = c.device_id
		WHERE c.entity = ? AND c.id = ? AND c.op = 'action' AND c.action = ? ORDER BY c.seq DESC LIMIT 1`,
		schema.EntSheet, d.Str("id"), schema.SheetSign).Scan(&v.DeviceName, &user, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	if u, err := e.Get(ctx, schema.EntUser, user); err == nil {
		v.DeviceUser = u.Str("name")
	}
	if !revoked.Valid {
		return nil
	}
	v.DeviceRevokedAt = revoked.String
	if at, err := time.Parse(time.RFC3339Nano, revoked.String); err == nil && at.Before(d.Time("received_at")) {
		v.DeviceNote += "；该手机在服务器收到此单前已停用 / the phone was revoked before the server received this sheet"
		return nil
	}
	v.DeviceNote += "；该手机之后已停用，停用前所作的签名仍然有效 / the phone was revoked later: the signature it made before then stays valid"
	return nil
}

// SheetVerdict is what the public verify page says about a sheet: only what is printed on
// the sheet, whether its seal is valid, and why not.
type SheetVerdict struct {
	SheetID     string   `json:"sheet_id"`
	Number      string   `json:"number"`
	Date        string   `json:"date"` // the day of signing in the company's time zone
	Customer    string   `json:"customer"`
	Technician  string   `json:"technician"`
	Status      string   `json:"status"`
	SignedAt    string   `json:"signed_at,omitempty"`   // the device's time of signing
	ReceivedAt  string   `json:"received_at,omitempty"` // the server's time of receipt
	Fingerprint string   `json:"fingerprint"`
	Seal        string   `json:"seal,omitempty"`
	Valid       bool     `json:"valid"`
	Reasons     []string `json:"reasons"` // why it is not valid; empty when valid
	// GivenFingerprint is the fingerprint from the URL (the QR code on the PDF), and
	// FingerprintMatches whether it is this sheet's (a prefix of at least 16 hex digits).
	GivenFingerprint   string `json:"given_fingerprint,omitempty"`
	FingerprintMatches *bool  `json:"fingerprint_matches,omitempty"`
	ChainIndex         int64  `json:"chain_index,omitempty"`
	ChainIntact        bool   `json:"chain_intact"`
	Notice             string `json:"notice,omitempty"` // e.g. replaced by a correction
	// The device's signature: DeviceSigned when the sheet carries one, DeviceValid when it is
	// the device key's signature of the sheet's content; DeviceNote says it in words.
	DeviceSigned   bool   `json:"device_signed"`
	DeviceValid    bool   `json:"device_valid"`
	DeviceTime     string `json:"device_time,omitempty"`
	DeviceKey      string `json:"device_key,omitempty"`
	DeviceSig      string `json:"device_signature,omitempty"`
	DeviceFP       string `json:"device_fingerprint,omitempty"`
	DevicePrev     string `json:"device_prev_signature,omitempty"`
	DeviceChainGap bool   `json:"device_chain_gap,omitempty"`
	DeviceNote     string `json:"device_note"`
	// The phone that signed (the device of the sign in the change log): its name as it
	// logged in, whose it is, and when it was revoked, if it was, after signing.
	DeviceName      string `json:"device_name,omitempty"`
	DeviceUser      string `json:"device_user,omitempty"`
	DeviceRevokedAt string `json:"device_revoked_at,omitempty"`
	// DeviceClockOffsetMS is the phone clock minus the server's as the phone last reported it
	// before the sign; ClockFlag says why its times are not credible (the tolerance setting).
	DeviceClockOffsetMS *int64 `json:"device_clock_offset_ms,omitempty"`
	ClockFlag           string `json:"clock_flag,omitempty"`
	// Withheld is true when the request gave no matching fingerprint: the verdict then says
	// only whether the sheet is genuine, not what it says.
	Withheld bool `json:"withheld,omitempty"`
	// A valid seal says the sheet is genuine, not that it counts: whether it is complete
	// (what is missing) and whether a manager accepted the exception, by whom, when, why.
	Complete          bool     `json:"complete"`
	Missing           []string `json:"missing"`
	ExceptionAccepted bool     `json:"exception_accepted"`
	ExceptionBy       string   `json:"exception_by,omitempty"` // the manager's name
	ExceptionAt       string   `json:"exception_at,omitempty"` // in the company's time zone
	ExceptionNote     string   `json:"exception_note,omitempty"`
	// Origin is "paper" for a sheet a coordinator entered from the signed and stamped paper
	// form (EnteredBy names them, ScanPages counts the scan's pages), else "device".
	Origin    string `json:"origin"`
	EnteredBy string `json:"entered_by,omitempty"`
	ScanPages int    `json:"scan_pages,omitempty"`
}

// withhold clears what the sheet says (names, number, times, fingerprint, seal), keeping
// whether it is genuine.
func (v *SheetVerdict) withhold() {
	v.Number, v.Date, v.Customer, v.Technician, v.SignedAt, v.ReceivedAt, v.Fingerprint, v.Seal = "", "", "", "", "", "", "", ""
	v.DeviceTime, v.DeviceKey, v.DeviceSig, v.DeviceFP, v.DevicePrev = "", "", "", "", ""
	v.DeviceClockOffsetMS, v.ClockFlag = nil, ""
	v.DeviceName, v.DeviceUser, v.DeviceRevokedAt = "", "", ""
	v.ChainIndex = 0
	v.ExceptionBy, v.ExceptionAt, v.ExceptionNote = "", "", ""
	v.EnteredBy, v.ScanPages = "", 0
	v.Withheld = true
}

// MinGivenFingerprint is the shortest fingerprint prefix a URL may carry.
const MinGivenFingerprint = 16

// VerifySheet checks a sheet as stored: it re-hashes its images, recomputes its fingerprint,
// checks the seal with the public key, checks the link to the technician's previous sealed
// sheet, and compares the fingerprint given (from a printed copy) with the stored one.
func (e *Engine) VerifySheet(ctx context.Context, id, given string) (*SheetVerdict, error) {
	d, err := e.Get(ctx, schema.EntSheet, id)
	if err != nil {
		return nil, err
	}
	v := &SheetVerdict{SheetID: d.Str("id"), Number: d.Str("number"), Customer: d.Str("customer_name"), Technician: d.Str("technician_name"),
		Status: d.Str("status"), SignedAt: d.Str("signed_at"), ReceivedAt: d.Str("received_at"), Fingerprint: d.Str("fingerprint"),
		Seal: d.Str("seal"), ChainIndex: d.Int("chain_index"), Reasons: []string{}}
	if t := d.Time("signed_at"); !t.IsZero() {
		v.Date = t.In(e.Settings().Location()).Format(time.DateOnly)
	}
	v.Complete, v.Missing = d.Bool("complete"), d.Strings("missing")
	v.Origin = cmp.Or(d.Str("origin"), schema.OriginDevice)
	if v.Origin == schema.OriginPaper {
		v.EnteredBy, v.ScanPages = d.Str("entered_by_name"), len(d.Strings("scan_blobs"))
	}
	if v.Missing == nil {
		v.Missing = []string{}
	}
	if d.Bool("exception_accepted") {
		v.ExceptionAccepted = true
		v.ExceptionBy = d.Str("exception_by")
		if u, err := e.Get(ctx, schema.EntUser, v.ExceptionBy); err == nil {
			v.ExceptionBy = u.Str("name")
		}
		v.ExceptionAt = d.Time("exception_at").In(e.Settings().Location()).Format("2006-01-02 15:04")
		v.ExceptionNote = cmp.Or(d.Str("exception_note"), d.Str("absent_reason"))
	}
	if given != "" {
		g := strings.ToLower(given)
		v.GivenFingerprint = g
		ok := len(g) >= MinGivenFingerprint && schema.ValidBlobSum(g+strings.Repeat("0", max(0, 64-len(g)))) && strings.HasPrefix(v.Fingerprint, g)
		v.FingerprintMatches = &ok
		if !ok {
			v.Reasons = append(v.Reasons, fmt.Sprintf("the fingerprint on your copy (%s) is not this sheet's sealed fingerprint", g))
		}
	}
	if v.Fingerprint == "" || v.Seal == "" {
		// A draft proves nothing: say so, and show nothing of it.
		return &SheetVerdict{SheetID: v.SheetID, Status: v.Status, Reasons: []string{"the sheet is not signed: it has no seal yet"}}, nil
	}
	if v.FingerprintMatches == nil || !*v.FingerprintMatches {
		// Sheet ids can be guessed (a device chooses them): what the sheet says is shown only
		// to whoever holds its fingerprint, printed on the copy and carried by its QR code.
		defer v.withhold()
	}
	sums := map[string]string{}
	for _, f := range schema.SheetBlobFields {
		sum := d.Str(f)
		if sum == "" {
			continue
		}
		if e.Blobs == nil {
			v.Reasons = append(v.Reasons, fmt.Sprintf("the image %s cannot be checked: this server keeps no images", f))
			continue
		}
		actual, err := e.Blobs.Rehash(sum)
		if se, ok := schema.AsError(err); ok && (se.Code == schema.CodeNotFound || se.Code == schema.CodeValidation) {
			v.Reasons = append(v.Reasons, fmt.Sprintf("the image %s is missing from the server", f))
			continue
		} else if err != nil {
			return nil, err
		}
		if actual != sum {
			v.Reasons = append(v.Reasons, fmt.Sprintf("the image %s was changed after sealing", f))
		}
		sums[f] = actual
	}
	for i, sum := range d.Strings("scan_blobs") {
		actual := ""
		if e.Blobs != nil {
			if a, err := e.Blobs.Rehash(sum); err == nil {
				actual = a
			} else if se, ok := schema.AsError(err); !ok || (se.Code != schema.CodeNotFound && se.Code != schema.CodeValidation) {
				return nil, err
			}
		}
		switch actual {
		case "":
			v.Reasons = append(v.Reasons, fmt.Sprintf("扫描件第 %d 页不在服务器上 / page %d of the paper scan is missing from the server", i+1, i+1))
		case sum:
		default:
			v.Reasons = append(v.Reasons, fmt.Sprintf("扫描件第 %d 页在封签后被改动 / page %d of the paper scan was changed after sealing", i+1, i+1))
		}
		sums[schema.ScanKey(i)] = actual
	}
	if fp := schema.SheetFingerprint(d, sums); fp != v.Fingerprint {
		v.Reasons = append(v.Reasons, "the sheet's content was changed after sealing: it no longer matches its fingerprint")
	}
	if e.Sealer == nil || !schema.VerifySeal(e.Sealer.Public(), v.Fingerprint, v.Seal) {
		v.Reasons = append(v.Reasons, "the seal is not this server's signature of the fingerprint")
	}
	v.deviceVerdict(d)
	if err := e.signingDevice(ctx, v, d); err != nil {
		return nil, err
	}
	if x, ok := d["device_clock_offset_ms"]; ok && x != nil {
		off := d.Int("device_clock_offset_ms")
		v.DeviceClockOffsetMS = &off
	}
	ticket, _ := e.Get(ctx, schema.EntTicket, d.Str("ticket_id")) // for its dispatch; none when it is gone
	v.ClockFlag = schema.SheetClockFlag(d, ticket, e.Settings().Int("device_clock_tolerance_seconds"))
	v.ChainIntact = true
	if prevID := d.Str("prev_sheet_id"); prevID != "" {
		prev, err := e.Get(ctx, schema.EntSheet, prevID)
		if err != nil || prev.Str("fingerprint") != d.Str("prev_fingerprint") {
			v.ChainIntact = false
			v.Reasons = append(v.Reasons, "the technician's previous sealed sheet was changed or removed: the chain is broken")
		}
	} else if v.ChainIndex != 1 {
		v.ChainIntact = false
		v.Reasons = append(v.Reasons, "the sheet is not linked to the technician's previous sealed sheet: the chain is broken")
	}
	v.Valid = len(v.Reasons) == 0
	switch v.Status {
	case schema.SheetVoid:
		v.Notice = "this sheet was replaced by a correction"
	case schema.SheetReturned:
		v.Notice = "this sheet was returned to the technician"
	}
	return v, nil
}
