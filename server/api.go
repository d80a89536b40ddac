package server

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// apply runs one mutation through the write path for the API (no merging: a stale
// If-Match is a conflict) and returns the record or the rejection as an error.
func (s *Server) apply(c *fiber.Ctx, m syncer.Mutation) (schema.Doc, error) {
	res, err := s.Engine.Apply(c.UserContext(), session(c).Actor, []syncer.Mutation{m}, syncer.Options{})
	if err != nil {
		return nil, err
	}
	r := res[0]
	if r.Status == syncer.StatusRejected {
		se := &schema.Error{Code: r.Code, Message: r.Message, Field: r.Field, Extra: r.Extra, Entity: m.Entity}
		if len(r.Record) > 0 {
			se.Record = json.RawMessage(r.Record)
		}
		return nil, se
	}
	return schema.DecodeDoc(r.Record)
}

// decorate adds what is derived from a record and the clock, never stored: whether a ticket
// is overdue, and an asset's warranty state today.
func (s *Server) decorate(entity string, d schema.Doc) schema.Doc {
	switch entity {
	case schema.EntTicket:
		d["overdue"] = schema.Overdue(d, s.Engine.Now())
	case schema.EntAsset:
		d["warranty_now"] = schema.WarrantyAt(d.Str("warranty_until"), s.Engine.Now(), s.Engine.Settings().Location())
	}
	return d
}

// createRecord handles POST for an entity; fixed fields come from the URL.
func (s *Server) createRecord(entity string, fixed func(c *fiber.Ctx) map[string]string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		fields, err := bodyFields(c)
		if err != nil {
			return err
		}
		if fixed != nil {
			for k, v := range fixed(c) {
				if _, given := fields[k]; given {
					return schema.FieldError(schema.CodeBadRequest, k, "%s comes from the URL; leave it out of the body", k)
				}
				fields[k] = json.RawMessage(strconv.Quote(v))
			}
		}
		d, err := s.apply(c, syncer.Mutation{Entity: entity, Op: "create", Fields: fields})
		if err != nil {
			return err
		}
		return c.Status(fiber.StatusCreated).JSON(s.decorate(entity, d))
	}
}

func (s *Server) getRecord(entity string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		d, err := s.Engine.Get(c.UserContext(), entity, strings.Clone(c.Params("id")))
		if err != nil {
			return err
		}
		return c.JSON(s.decorate(entity, d))
	}
}

// patchRecord edits fields. If-Match (the version the editor saw) is required, so an edit
// never silently overwrites one made meanwhile.
func (s *Server) patchRecord(entity string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		im := strings.Trim(c.Get(fiber.HeaderIfMatch), `"W/`)
		if im == "" {
			return schema.FieldError(schema.CodeValidation, "If-Match", "send If-Match with the version you are editing")
		}
		base, err := strconv.ParseInt(im, 10, 64)
		if err != nil || base < 1 {
			return schema.FieldError(schema.CodeValidation, "If-Match", "If-Match %q is not a version number", im)
		}
		fields, err := bodyFields(c)
		if err != nil {
			return err
		}
		d, err := s.apply(c, syncer.Mutation{Entity: entity, ID: strings.Clone(c.Params("id")), Op: "update", BaseVersion: base, Fields: fields})
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderETag, strconv.FormatInt(d.Int("version"), 10))
		return c.JSON(s.decorate(entity, d))
	}
}

// action runs a workflow step: POST /{entity}/{id}/actions/{action} with its parameters as
// the body.
func (s *Server) action(entity string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		fields := map[string]json.RawMessage{}
		if len(strings.TrimSpace(string(c.Body()))) > 0 {
			var err error
			if fields, err = bodyFields(c); err != nil {
				return err
			}
		}
		d, err := s.apply(c, syncer.Mutation{Entity: entity, ID: strings.Clone(c.Params("id")), Op: "action", Action: strings.Clone(c.Params("action")), Fields: fields})
		if err != nil {
			return err
		}
		return c.JSON(s.decorate(entity, d))
	}
}

// page reads limit and offset.
func page(c *fiber.Ctx) (int, int, error) {
	limit, offset := 50, 0
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return 0, 0, schema.FieldError(schema.CodeValidation, "limit", "limit must be 1 to 500")
		}
		limit = n
	}
	if v := c.Query("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, schema.FieldError(schema.CodeValidation, "offset", "offset must be a non-negative integer")
		}
		offset = n
	}
	return limit, offset, nil
}

func (s *Server) list(c *fiber.Ctx, q syncer.Query) error {
	limit, offset, err := page(c)
	if err != nil {
		return err
	}
	total, err := s.Engine.Count(c.UserContext(), q)
	if err != nil {
		return err
	}
	q.Limit, q.Offset = limit, offset
	items, err := s.Engine.List(c.UserContext(), q)
	if err != nil {
		return err
	}
	for _, d := range items {
		s.decorate(q.Entity, d)
	}
	return c.JSON(fiber.Map{"items": items, "total": total, "limit": limit, "offset": offset})
}

func likeArg(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

func (s *Server) listCustomers(c *fiber.Ctx) error {
	q := syncer.Query{Entity: schema.EntCustomer, Order: "data ->> 'name', id"}
	if v := c.Query("q"); v != "" {
		q.Where = append(q.Where, `data ->> 'name' LIKE ? ESCAPE '\' OR data ->> 'phone' LIKE ? ESCAPE '\' OR data ->> 'code' LIKE ? ESCAPE '\'`)
		q.Args = append(q.Args, likeArg(v), likeArg(v), likeArg(v))
	}
	return s.list(c, q)
}

func (s *Server) listSites(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	if _, err := s.Engine.Get(c.UserContext(), schema.EntCustomer, id); err != nil {
		return err
	}
	return s.list(c, syncer.Query{Entity: schema.EntSite, Where: []string{"customer_id = ?"}, Args: []any{id}, Order: "data ->> 'name', id"})
}

func (s *Server) listAssets(c *fiber.Ctx) error {
	q := syncer.Query{Entity: schema.EntAsset}
	if v := c.Query("serial"); v != "" {
		q.Where, q.Args = append(q.Where, "serial = ?"), append(q.Args, v)
	}
	if v := c.Query("customer_id"); v != "" {
		q.Where, q.Args = append(q.Where, "customer_id = ?"), append(q.Args, v)
	}
	return s.list(c, q)
}

func parseTime(field, v string) (string, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return schema.Stamp(t), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return schema.Stamp(t), nil
	}
	return "", schema.FieldError(schema.CodeValidation, field, "%s %q is not a date (YYYY-MM-DD) or RFC 3339 time", field, v)
}

func (s *Server) listTickets(c *fiber.Ctx) error {
	q := syncer.Query{Entity: schema.EntTicket, Order: "data ->> 'received_at' DESC, id DESC"}
	if v := c.Query("status"); v != "" {
		for _, st := range strings.Split(v, ",") {
			if !slices.Contains(schema.Statuses, st) {
				return schema.FieldError(schema.CodeValidation, "status", "status %q is not one of %s", st, strings.Join(schema.Statuses, ", "))
			}
		}
		q.Where = append(q.Where, "status IN (SELECT value FROM json_each(?))")
		q.Args = append(q.Args, string(schema.MustJSON(strings.Split(v, ","))))
	}
	if v := c.Query("assignee"); v != "" {
		q.Where, q.Args = append(q.Where, "assignee_id = ?"), append(q.Args, v)
	}
	if v := c.Query("source"); v != "" {
		if !slices.Contains(schema.Sources, v) {
			return schema.FieldError(schema.CodeValidation, "source", "source %q is not one of %s", v, strings.Join(schema.Sources, ", "))
		}
		q.Where, q.Args = append(q.Where, "data ->> 'source' = ?"), append(q.Args, v)
	}
	if v := c.Query("customer_id"); v != "" {
		q.Where, q.Args = append(q.Where, "customer_id = ?"), append(q.Args, v)
	}
	if v := c.Query("urgency"); v != "" {
		for _, u := range strings.Split(v, ",") {
			if !slices.Contains(schema.Urgencies, u) {
				return schema.FieldError(schema.CodeValidation, "urgency", "urgency %q is not one of %s", u, strings.Join(schema.Urgencies, ", "))
			}
		}
		q.Where = append(q.Where, "data ->> 'urgency' IN (SELECT value FROM json_each(?))")
		q.Args = append(q.Args, string(schema.MustJSON(strings.Split(v, ","))))
	}
	if v, ok := c.Queries()["phone"]; ok {
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, v)
		if digits == "" {
			return schema.FieldError(schema.CodeValidation, "phone", "phone %q has no digits: give the number, or part of it", v)
		}
		// Digits only on both sides: 0571-8888 7777, (0571) 88887777 and 057188887777 match.
		q.Where = append(q.Where, `(`+digitsOnly("data ->> 'contact_phone'")+` LIKE ? OR customer_id IN (SELECT id FROM records WHERE entity = 'customer' AND `+digitsOnly("data ->> 'phone'")+` LIKE ?))`)
		q.Args = append(q.Args, "%"+digits+"%", "%"+digits+"%")
	}
	if v := strings.TrimSpace(c.Query("serial")); v != "" {
		q.Where = append(q.Where, `data ->> 'asset_id' IN (SELECT id FROM records WHERE entity = 'asset' AND data ->> 'serial' LIKE ? ESCAPE '\')`)
		q.Args = append(q.Args, likeArg(v))
	}
	if v := strings.TrimSpace(c.Query("technician")); v != "" {
		q.Where = append(q.Where, `(assignee_id = ? OR data ->> 'completed_by' = ? OR assignee_id IN (SELECT id FROM records WHERE entity = 'user' AND data ->> 'name' LIKE ? ESCAPE '\'))`)
		q.Args = append(q.Args, v, v, likeArg(v))
	}
	if v := c.Query("sort"); v != "" {
		order, ok := ticketSorts[strings.TrimPrefix(v, "-")]
		if !ok {
			return schema.FieldError(schema.CodeValidation, "sort", "sort %q is not one of %s (a leading - sorts descending)", v, strings.Join(slices.Sorted(maps.Keys(ticketSorts)), ", "))
		}
		dir := " ASC"
		if strings.HasPrefix(v, "-") {
			dir = " DESC"
		}
		q.Order = order + dir + ", id" + dir
	}
	if v := c.Query("q"); v != "" {
		q.Where = append(q.Where, `data ->> 'number' LIKE ? ESCAPE '\' OR data ->> 'fault_symptoms' LIKE ? ESCAPE '\' OR data ->> 'contact_name' LIKE ? ESCAPE '\'
			OR data ->> 'address' LIKE ? ESCAPE '\' OR customer_id IN (SELECT id FROM records WHERE entity = 'customer' AND data ->> 'name' LIKE ? ESCAPE '\')`)
		for range 5 {
			q.Args = append(q.Args, likeArg(v))
		}
	}
	for _, b := range []struct{ param, op string }{{"from", ">="}, {"to", "<"}} {
		if v := c.Query(b.param); v != "" {
			t, err := parseTime(b.param, v)
			if err != nil {
				return err
			}
			q.Where, q.Args = append(q.Where, "data ->> 'received_at' "+b.op+" ?"), append(q.Args, t)
		}
	}
	if v := c.Query("overdue"); v != "" {
		if v != "true" && v != "false" {
			return schema.FieldError(schema.CodeValidation, "overdue", "overdue must be true or false")
		}
		now := schema.Stamp(s.Engine.Now())
		cond := `status NOT IN ('completed','sheet_received','followed_up','closed','cancelled') AND (
			(data ->> 'accepted_at' IS NULL AND data ->> 'due_response_at' < ?) OR
			(data ->> 'service_mode' = 'onsite' AND data ->> 'arrived_at' IS NULL AND data ->> 'due_arrival_at' < ?))`
		if v == "false" {
			cond = "NOT (" + cond + ")"
		}
		q.Where, q.Args = append(q.Where, cond), append(q.Args, now, now)
	}
	return s.list(c, q)
}

// ticketSorts are the orders GET /tickets?sort= offers, by name; "-name" reverses one.
var ticketSorts = map[string]string{
	"received_at":  "data ->> 'received_at'",
	"due":          "data ->> 'due_response_at'",
	"completed_at": "data ->> 'completed_at'",
	"number":       "data ->> 'number'",
	"urgency":      "CASE data ->> 'urgency' WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END",
	"status":       "CASE status " + statusOrder() + " END",
	"customer":     "(SELECT data ->> 'name' FROM records c WHERE c.entity = 'customer' AND c.id = records.customer_id)",
}

// statusOrder is the WHEN list that sorts statuses in workflow order.
func statusOrder() string {
	var b strings.Builder
	for i, st := range schema.Statuses {
		fmt.Fprintf(&b, "WHEN '%s' THEN %d ", st, i)
	}
	return b.String()
}

// digitsOnly is the SQL for expr with the separators people write in phone numbers removed.
func digitsOnly(expr string) string {
	for _, sep := range []string{"-", " ", "+", "(", ")", "."} {
		expr = "replace(" + expr + ", '" + sep + "', '')"
	}
	return expr
}

// getTicket returns a ticket with its events, sheets, complaints and follow-ups.
func (s *Server) getTicket(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	ctx := c.UserContext()
	t, err := s.Engine.Get(ctx, schema.EntTicket, id)
	if err != nil {
		return err
	}
	s.decorate(schema.EntTicket, t)
	// The newest ticketChildren of each kind, oldest first, with their count: a ticket with
	// a flood of events stays one small answer; GET /tickets/{id}/events pages through all.
	for key, ent := range ticketChildren {
		q := syncer.Query{Entity: ent, Where: []string{"ticket_id = ?"}, Args: []any{id}, Order: "data ->> 'created_at' DESC, id DESC", Limit: ticketChildLimit}
		items, err := s.Engine.List(ctx, q)
		if err != nil {
			return err
		}
		slices.Reverse(items)
		t[key] = items
		if len(items) == ticketChildLimit {
			n, err := s.Engine.Count(ctx, q)
			if err != nil {
				return err
			}
			t[key+"_total"] = n
		} else {
			t[key+"_total"] = len(items)
		}
	}
	return c.JSON(t)
}

// ticketChildren are the records listed with a ticket, by the key they are listed under.
var ticketChildren = map[string]string{"events": schema.EntTicketEvent, "sheets": schema.EntSheet, "complaints": schema.EntComplaint, "followups": schema.EntFollowup}

// ticketChildLimit bounds each list in a ticket's answer.
const ticketChildLimit = 100

// ticketChildList pages through one kind of a ticket's records, oldest first.
func (s *Server) ticketChildList(key string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := strings.Clone(c.Params("id"))
		if _, err := s.Engine.Get(c.UserContext(), schema.EntTicket, id); err != nil {
			return err
		}
		return s.list(c, syncer.Query{Entity: ticketChildren[key], Where: []string{"ticket_id = ?"}, Args: []any{id}, Order: "data ->> 'created_at', id"})
	}
}

func (s *Server) ticketHistory(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	if _, err := s.Engine.Get(c.UserContext(), schema.EntTicket, id); err != nil {
		return err
	}
	h, err := s.Engine.TicketHistory(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": h})
}

// monthRange turns ?month=YYYY-MM into bounds on a time field, in the company's zone.
func (s *Server) monthFilter(c *fiber.Ctx, q *syncer.Query, field string) error {
	v := c.Query("month")
	if v == "" {
		return nil
	}
	start, end, err := schema.ParseMonth(v, s.Engine.Settings().Location(), time.Time{})
	if err != nil {
		return err
	}
	q.Where = append(q.Where, "data ->> '"+field+"' >= ? AND data ->> '"+field+"' < ?")
	q.Args = append(q.Args, schema.Stamp(start), schema.Stamp(end))
	return nil
}

func (s *Server) listByMonth(entity, field string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		q := syncer.Query{Entity: entity, Order: "data ->> '" + field + "', id"}
		if err := s.monthFilter(c, &q, field); err != nil {
			return err
		}
		for _, p := range []string{"technician_id", "ticket_id"} {
			if v := c.Query(p); v != "" {
				q.Where, q.Args = append(q.Where, p+" = ?"), append(q.Args, v)
			}
		}
		return s.list(c, q)
	}
}

func (s *Server) getSettings(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"items": visibleSettings(s.Engine.Settings().All(), session(c).Actor.Role)})
}

// settingsHistory lists who changed which setting when, newest first (?key=, limit, offset).
func (s *Server) settingsHistory(c *fiber.Ctx) error {
	limit, offset, err := page(c)
	if err != nil {
		return err
	}
	key := c.Query("key")
	if key != "" {
		if _, ok := schema.SettingDefByKey(key); !ok {
			return schema.FieldError(schema.CodeValidation, "key", "no setting %q", key)
		}
	}
	items, err := s.Engine.SettingsHistory(c.UserContext(), key, limit, offset)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "limit": limit, "offset": offset})
}

// putSettings sets any number of settings, {"key": value, ...}, in one transaction: all or
// nothing.
func (s *Server) putSettings(c *fiber.Ctx) error {
	fields, err := bodyFields(c)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return schema.Errorf(schema.CodeValidation, "send at least one setting")
	}
	var u string
	if json.Unmarshal(fields["public_url"], &u) == nil {
		if err := schema.CheckPublicURL(u); err != nil {
			return err
		}
	}
	if err := s.Engine.PutSettings(c.UserContext(), session(c).Actor, fields); err != nil {
		return err
	}
	return s.getSettings(c)
}
