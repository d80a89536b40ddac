package server

import (
	"github.com/gofiber/fiber/v2"

	mobileapi "fieldsync/mobile-api"
	"fieldsync/schema"
)

func (s *Server) routes() {
	app := s.App
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", func(c *fiber.Ctx) error {
		if err := s.DB.R.PingContext(c.UserContext()); err != nil {
			return schema.Errorf(schema.CodeUnavailable, "the database does not answer")
		}
		var one int
		if err := s.DB.R.QueryRowContext(c.UserContext(), `SELECT 1`).Scan(&one); err != nil {
			return schema.Errorf(schema.CodeUnavailable, "the database does not answer")
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})

	s.consoleRoutes(app) // before the /api/v1 groups, so /api/v1/demo stays public
	api := app.Group("/api/v1")
	api.Get("/openapi.json", s.openAPI)
	api.Post("/auth/login", s.login(false))
	app.Post("/mobile/v1/auth/login", s.login(true))
	auth := api.Group("", s.authenticate)
	auth.Post("/auth/logout", s.logout)
	auth.Post("/auth/password", s.changePassword)
	auth.Get("/me", s.me)
	auth.Patch("/me", s.patchMe)

	office := auth.Group("", officeOnly)
	admin := roles(schema.RoleAdmin)
	office.Get("/live", s.live)
	office.Get("/users", s.listUsers)
	office.Post("/users", admin, s.createUser)
	office.Patch("/users/:id", admin, s.patchRecord(schema.EntUser))
	office.Post("/users/:id/password", admin, s.resetPassword)
	office.Get("/devices", s.listDevices)
	office.Post("/devices/:id/revoke", roles(schema.RoleAdmin, schema.RoleCoordinator), s.revokeDevice)
	office.Get("/devices/:id/clock", roles(schema.RoleAdmin, schema.RoleManager), s.deviceClock)

	office.Post("/customers", s.createRecord(schema.EntCustomer, nil))
	office.Get("/customers", s.listCustomers)
	office.Get("/customers/:id", s.getRecord(schema.EntCustomer))
	office.Patch("/customers/:id", s.patchRecord(schema.EntCustomer))
	office.Post("/customers/:id/sites", s.createRecord(schema.EntSite, fromParam("customer_id", "id")))
	office.Get("/customers/:id/sites", s.listSites)
	office.Get("/sites/:id", s.getRecord(schema.EntSite))
	office.Patch("/sites/:id", s.patchRecord(schema.EntSite))
	office.Post("/assets", s.createRecord(schema.EntAsset, nil))
	office.Get("/assets", s.listAssets)
	office.Get("/assets/:id", s.getRecord(schema.EntAsset))
	office.Patch("/assets/:id", s.patchRecord(schema.EntAsset))

	s.paperRoutes(office) // before /tickets/:id: /tickets/lookup is not a ticket id
	office.Post("/tickets", s.createRecord(schema.EntTicket, nil))
	office.Get("/tickets", s.listTickets)
	office.Get("/tickets/:id", s.getTicket)
	office.Patch("/tickets/:id", s.patchRecord(schema.EntTicket))
	office.Get("/tickets/:id/history", s.ticketHistory)
	office.Get("/tickets/:id/events", s.ticketChildList("events"))
	office.Get("/tickets/:id/sheets", s.ticketChildList("sheets"))
	office.Post("/tickets/:id/actions/:action", s.action(schema.EntTicket))
	office.Post("/tickets/:id/notes", s.createRecord(schema.EntTicketEvent, fromParam("ticket_id", "id")))
	office.Post("/tickets/:id/complaints", s.createRecord(schema.EntComplaint, fromParam("ticket_id", "id")))
	office.Post("/tickets/:id/followups", s.createRecord(schema.EntFollowup, fromParam("ticket_id", "id")))
	office.Get("/complaints", s.listByMonth(schema.EntComplaint, "received_at"))
	office.Post("/complaints/:id/actions/:action", s.action(schema.EntComplaint))
	office.Get("/followups", s.listByMonth(schema.EntFollowup, "called_at"))

	s.importRoutes(office)

	office.Get("/settings", s.getSettings)
	office.Get("/settings/history", s.settingsHistory)
	office.Put("/settings", admin, s.putSettings)

	s.documentRoutes(office) // before sheetRoutes: /sheets/{id}.pdf must win over /sheets/{id}
	s.sheetRoutes(app, office)
	s.monthRoutes(office)
	s.moneyRoutes(office)
	s.alertRoutes(auth, office)

	s.Mobile = mobileapi.New(s.Engine, s.log)
	s.Mobile.Register(app)
}

// fromParam fills a field of the created record from a URL parameter.
func fromParam(field, param string) func(c *fiber.Ctx) map[string]string {
	return func(c *fiber.Ctx) map[string]string {
		return map[string]string{field: string([]byte(c.Params(param)))}
	}
}
