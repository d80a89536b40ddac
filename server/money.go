package server

import (
	"context"
	"slices"

	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// moneyRoutes are the office API of docs/money.md: approval requests, expenses, sales and the
// receivables derived from them. Every write goes through the engine like any other record.
func (s *Server) moneyRoutes(office fiber.Router) {
	for _, r := range []struct {
		path, entity, order string
		filters             []string
	}{
		{"/approvals", schema.EntApproval, "data ->> 'created_at' DESC, id", []string{"status", "kind", "technician_id", "decider_role", "sale_id"}},
		{"/expenses", schema.EntExpense, "data ->> 'created_at' DESC, id", []string{"status", "kind", "technician_id", "approval_id"}},
		{"/sales", schema.EntSale, "data ->> 'created_at' DESC, id", []string{"kind", "technician_id", "customer_id"}},
		{"/repairs", schema.EntRepair, "data ->> 'created_at' DESC, id", []string{"status", "technician_id", "customer_id", "asset_id"}},
	} {
		office.Post(r.path, s.createRecord(r.entity, nil))
		office.Get(r.path, s.listFiltered(r.entity, r.order, r.filters))
		office.Get(r.path+"/:id", s.getRecord(r.entity))
		office.Post(r.path+"/:id/actions/:action", s.action(r.entity))
	}
	// An unreported charge takes no steps: it is recorded, and read.
	office.Post("/unreported-charges", s.createRecord(schema.EntUnreported, nil))
	office.Get("/unreported-charges", s.listFiltered(schema.EntUnreported, "data ->> 'created_at' DESC, id", []string{"technician_id", "complaint_id"}))
	office.Get("/unreported-charges/:id", s.getRecord(schema.EntUnreported))
	office.Patch("/sales/:id", s.patchRecord(schema.EntSale))
	office.Get("/receivables", s.listReceivables)
}

// listFiltered lists entity's records, newest first, narrowed by any of filters given as
// query parameters (exact match).
func (s *Server) listFiltered(entity, order string, filters []string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q := syncer.Query{Entity: entity, Order: order}
		for _, p := range filters {
			if v := c.Query(p); v != "" {
				q.Where, q.Args = append(q.Where, "data ->> '"+p+"' = ?"), append(q.Args, v)
			}
		}
		return s.list(c, q)
	}
}

// listReceivables lists every shipped sale still owed, oldest debt first, with its age and
// bucket, and the sums per bucket; ?technician_id= narrows it to one handler.
func (s *Server) listReceivables(c *fiber.Ctx) error {
	items, err := Receivables(c.UserContext(), s.Engine, c.Query("technician_id"))
	if err != nil {
		return err
	}
	buckets := map[string]int64{}
	var total int64
	for _, r := range items {
		buckets[r.Bucket] += r.OwedFen
		total += r.OwedFen
	}
	return c.JSON(fiber.Map{"items": items, "buckets": buckets, "owed_fen": total})
}

// Receivables derives every shipped sale still owed at the engine's clock, of one handler
// when tech is not "", oldest debt first.
func Receivables(ctx context.Context, e *syncer.Engine, tech string) ([]schema.Receivable, error) {
	q := syncer.Query{Entity: schema.EntSale, Where: []string{"data ->> 'shipped_at' IS NOT NULL", "CAST(data ->> 'paid_fen' AS INTEGER) < CAST(data ->> 'total_fen' AS INTEGER)"},
		Order: "data ->> 'shipped_at', id"}
	if tech != "" {
		q.Where, q.Args = append(q.Where, "technician_id = ?"), append(q.Args, tech)
	}
	sales, err := e.List(ctx, q)
	if err != nil {
		return nil, err
	}
	now := e.Now()
	items := []schema.Receivable{}
	for _, d := range sales {
		if r, ok := schema.ReceivableOf(d, now); ok {
			items = append(items, r)
		}
	}
	slices.SortStableFunc(items, func(a, b schema.Receivable) int { return int(b.AgeDays - a.AgeDays) })
	return items, nil
}
