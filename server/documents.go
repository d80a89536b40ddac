package server

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	mobileapi "fieldsync/mobile-api"
)

func init() {
	apiDoc = append(apiDoc, []routeDoc{
		{"GET", "/api/v1/tickets/{id}/form.pdf", "the ticket's feedback form as a PDF, pre-filled with the request, customer and equipment (?lang=zh|en|both; id or number)", "office", false},
		{"GET", "/api/v1/forms/blank.pdf", "the blank feedback form as a PDF (?lang=zh|en|both)", "office", false},
		{"GET", "/api/v1/sheets/{id}.pdf", "a feedback sheet as a PDF with its signature, stamp, seal fingerprint and verify QR code (?lang=zh|en|both)", "office", false},
		{"GET", "/mobile/v1/sheets/{id}.pdf", "a feedback sheet in the device's scope as a PDF (?lang=zh|en|both)", "device", false},
	}...)
}

// documentRoutes registers the PDF endpoints. Each document is rendered into memory and
// sent only when whole, so a failure is an error answer, never a truncated PDF. The
// language is the pdf_lang setting unless ?lang= overrides it.
func (s *Server) documentRoutes(office fiber.Router) {
	office.Get("/tickets/:id/form.pdf", s.ticketFormPDF)
	office.Get("/forms/blank.pdf", s.blankFormPDF)
	office.Get("/sheets/:id.pdf", s.sheetPDF)
}

func (s *Server) ticketFormPDF(c *fiber.Ctx) error {
	lang, err := mobileapi.PDFLang(s.Engine, c.Query("lang"))
	if err != nil {
		return err
	}
	pdf, name, err := mobileapi.FormPDF(c.UserContext(), s.Engine, strings.Clone(c.Params("id")), lang)
	if err != nil {
		return err
	}
	return mobileapi.SendPDF(c, pdf, name)
}

func (s *Server) blankFormPDF(c *fiber.Ctx) error {
	lang, err := mobileapi.PDFLang(s.Engine, c.Query("lang"))
	if err != nil {
		return err
	}
	pdf, name, err := mobileapi.BlankFormPDF(s.Engine, lang)
	if err != nil {
		return err
	}
	return mobileapi.SendPDF(c, pdf, name)
}

func (s *Server) sheetPDF(c *fiber.Ctx) error {
	lang, err := mobileapi.PDFLang(s.Engine, c.Query("lang"))
	if err != nil {
		return err
	}
	pdf, name, err := mobileapi.SheetPDF(c.UserContext(), s.Engine, strings.Clone(c.Params("id")), s.Engine.Settings().String("public_url"), lang)
	if err != nil {
		return err
	}
	return mobileapi.SendPDF(c, pdf, name)
}
