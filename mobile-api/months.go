package mobileapi

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
)

// monthRoutes registers the technician's own month figures.
func (a *API) monthRoutes(dev fiber.Router) {
	dev.Get("/months/:month/me", a.myMonth)
}

// myMonth answers GET /mobile/v1/months/{month}/me: the logged-in technician's own row of a
// compiled month, with the month's status, so the technician sees the figures the pay will
// follow. Nobody else's row, totals or trail comments leave the office.
func (a *API) myMonth(c *fiber.Ctx) error {
	actor := sess(c).Actor
	if actor.Role != schema.RoleTechnician {
		return schema.Errorf(schema.CodeForbidden, "only technicians have a row of their own; a %s reads the month at /api/v1/months/{month}", actor.Role)
	}
	month := strings.Clone(c.Params("month"))
	d, err := a.e.MonthReport(c.UserContext(), month)
	if err != nil {
		return err
	}
	rows, _ := d["rows"].([]any)
	for _, r := range rows {
		row, ok := r.(map[string]any)
		if !ok {
			continue
		}
		tech, _ := row["technician"].(map[string]any)
		if id, _ := tech["id"].(string); id == actor.UserID {
			return c.JSON(fiber.Map{"month": d.Str("month"), "status": d.Str("status"), "compiled_at": d["compiled_at"],
				"approved_at": d["approved_at"], "row": row})
		}
	}
	return schema.FieldError(schema.CodeNotFound, "month", "month %s has no row for you: you had no services, complaints or follow-ups in it and were not an active technician when it was compiled", month)
}
