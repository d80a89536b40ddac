package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	mobileapi "fieldsync/mobile-api"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// Paper sheets: the customer signed and stamped the printed form, the technician handed it
// in, and a coordinator enters it (docs/feedback-sheets.md, "Paper sheets"). The scan goes
// up through the same resumable blob upload the phones use; the sheet is one create through
// the write path, sealed there.

func init() {
	apiDoc = append(apiDoc, []routeDoc{
		{"GET", "/api/v1/tickets/lookup", "find a ticket by what the printed form carries (?code= the ticket number from its QR code, or an id)", "office", false},
		{"POST", "/api/v1/tickets/{id}/paper-sheet", "enter the ticket's signed and stamped paper sheet (id or number): {scan_blobs: [sha256, ...], signature_present, stamp_present, technician_signature_present, fault_symptoms, inspection_record, handling_result, rating, rating_comment, signer_name, arrived_at, departed_at, service_mode, parts, absent_reason}; sealed at entry with origin paper; 409 already_signed when the ticket has a sealed sheet", "coordinator, admin", true},
		{"POST", "/api/v1/blobs", "upload a whole scan page in one request (the body, up to the body limit): PNG, JPEG, WebP or PDF → 201 {sha256, size, type}", "coordinator, admin", true},
		{"HEAD", "/api/v1/blobs/{sha256}", "blob status for an office upload (a paper sheet's scan): 200 whole, 404 with Upload-Offset", "coordinator, admin", false},
		{"PATCH", "/api/v1/blobs/{sha256}", "append a chunk of a scan (Upload-Offset, Upload-Length): PNG, JPEG, WebP or PDF", "coordinator, admin", true},
		{"GET", "/api/v1/blobs/{sha256}", "download a blob (a sheet's image or scan page)", "office", false},
	}...)
}

func (s *Server) paperRoutes(office fiber.Router) {
	entry := roles(schema.RoleCoordinator, schema.RoleAdmin)
	office.Get("/tickets/lookup", s.lookupTicket) // before /tickets/:id
	office.Post("/tickets/:id/paper-sheet", s.enterPaperSheet)
	office.Post("/blobs", entry, s.blobPost)
	office.Head("/blobs/:sha", entry, s.blobHead)
	office.Patch("/blobs/:sha", entry, s.blobPatch)
	office.Get("/blobs/:sha", s.blobGet)
}

// lookupTicket finds the ticket a printed form belongs to: its QR code carries the ticket
// number; a scanner gun types it, maybe with white space or as part of a longer text.
func (s *Server) lookupTicket(c *fiber.Ctx) error {
	code := strings.TrimSpace(c.Query("code"))
	if code == "" {
		return schema.FieldError(schema.CodeValidation, "code", "请输入或扫描表单上的工单号 / give the ticket number printed on the form (or scan its QR code)")
	}
	if i := strings.LastIndexAny(code, "/= "); i >= 0 && i < len(code)-1 {
		if _, err := mobileapi.FindTicket(c.UserContext(), s.Engine, code); err != nil {
			code = code[i+1:]
		}
	}
	t, err := mobileapi.FindTicket(c.UserContext(), s.Engine, code)
	if se, ok := schema.AsError(err); ok && se.Code == schema.CodeNotFound {
		return schema.FieldError(schema.CodeNotFound, "code", "没有工单号为 %q 的工单 / no ticket numbered %q", code, code)
	} else if err != nil {
		return err
	}
	return c.JSON(s.decorate(schema.EntTicket, t))
}

func (s *Server) enterPaperSheet(c *fiber.Ctx) error {
	t, err := mobileapi.FindTicket(c.UserContext(), s.Engine, strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	fields, err := bodyFields(c)
	if err != nil {
		return err
	}
	if _, given := fields["ticket_id"]; given {
		return schema.FieldError(schema.CodeBadRequest, "ticket_id", "ticket_id comes from the URL; leave it out of the body")
	}
	fields["ticket_id"] = json.RawMessage(strconv.Quote(t.Str("id")))
	d, err := s.apply(c, syncer.Mutation{Entity: schema.EntSheet, Op: "create", Fields: fields})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(d)
}

// blobPost stores a whole file sent as the body under its SHA-256, for a browser that
// cannot hash it itself (crypto.subtle exists only on https and localhost).
func (s *Server) blobPost(c *fiber.Ctx) error {
	body := c.Body()
	if len(body) == 0 {
		return schema.FieldError(schema.CodeValidation, "body", "请选择扫描件文件 / send the file as the request body")
	}
	sum := sha256.Sum256(body)
	name := hex.EncodeToString(sum[:])
	if !s.Engine.Blobs.Has(name) {
		if _, _, err := s.Engine.Blobs.Append("user:"+session(c).Actor.UserID, name, 0, int64(len(body)), bytes.NewReader(body)); err != nil {
			return err
		}
	}
	r, size, typ, err := s.Engine.Blobs.Open(name)
	if err != nil {
		return err
	}
	r.Close()
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"sha256": name, "size": size, "type": typ})
}

func (s *Server) blobHead(c *fiber.Ctx) error {
	complete, off, err := s.Engine.Blobs.Stat(strings.Clone(c.Params("sha")))
	if err != nil {
		return err
	}
	c.Set("Upload-Offset", strconv.FormatInt(off, 10))
	c.Set(fiber.HeaderCacheControl, "no-store")
	if !complete {
		return c.SendStatus(fiber.StatusNotFound)
	}
	return c.SendStatus(fiber.StatusOK)
}

func (s *Server) blobPatch(c *fiber.Ctx) error {
	return mobileapi.AppendBlob(c, s.Engine.Blobs, "user:"+session(c).Actor.UserID)
}

// blobGet sends a blob to an office user: shown inline (the console shows a scan beside the
// typed sheet), never sniffed as anything but the type it was checked to be.
func (s *Server) blobGet(c *fiber.Ctx) error {
	sum := strings.Clone(c.Params("sha"))
	r, size, typ, err := s.Engine.Blobs.Open(sum)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, typ)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderContentDisposition, `inline; filename="`+sum+"."+typ[strings.LastIndex(typ, "/")+1:]+`"`)
	c.Set(fiber.HeaderCacheControl, "private, max-age=31536000, immutable")
	return c.SendStream(r, int(size))
}
