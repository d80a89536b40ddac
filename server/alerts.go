package server

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"fieldsync/notify"
	"fieldsync/schema"
)

// DeadlineEvery is how often the server looks for deadlines crossed; SendEvery how often
// the sender looks for retries due (it is also woken by every write that raised an alert).
var (
	DeadlineEvery = 30 * time.Second
	SendEvery     = 15 * time.Second
)

// alerting runs the deadline watcher (at start, which catches up on what passed while the
// server was down, and then every DeadlineEvery) and the outbox sender, until Shutdown.
func (s *Server) alerting(ctx context.Context, wake <-chan struct{}) {
	s.bg.Add(2)
	go func() {
		defer s.bg.Done()
		s.sender.Run(ctx, wake, SendEvery)
	}()
	go func() {
		defer s.bg.Done()
		t := time.NewTicker(DeadlineEvery)
		defer t.Stop()
		for {
			if _, err := s.Engine.WatchDeadlines(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("watch deadlines", "err", err)
			}
			if _, err := s.Engine.WatchReceivables(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("watch receivables", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (s *Server) alertRoutes(auth, office fiber.Router) {
	auth.Get("/me/alerts", func(c *fiber.Ctx) error { return s.getAlertPrefs(c, session(c).Actor.UserID) })
	auth.Put("/me/alerts", func(c *fiber.Ctx) error { return s.putAlertPrefs(c, session(c).Actor.UserID) })
	admin := roles(schema.RoleAdmin)
	office.Get("/users/:id/alerts", admin, func(c *fiber.Ctx) error { return s.getAlertPrefs(c, c.Params("id")) })
	office.Put("/users/:id/alerts", admin, func(c *fiber.Ctx) error { return s.putAlertPrefs(c, c.Params("id")) })
	office.Get("/alerts/failed", admin, s.failedAlerts)
}

func (s *Server) getAlertPrefs(c *fiber.Ctx, userID string) error {
	p, def, err := s.Engine.AlertPrefs(c.UserContext(), userID)
	if err != nil {
		return err
	}
	set := s.Engine.Settings()
	configured := []string{}
	for _, ch := range schema.AlertChannels {
		if schema.ChannelConfigured(set, ch) {
			configured = append(configured, ch)
		}
	}
	return c.JSON(fiber.Map{"user_id": userID, "lang": p.Lang, "events": p.Events, "defaults": def,
		"available_events": schema.AlertEvents, "channels": schema.AlertChannels, "configured_channels": configured})
}

func (s *Server) putAlertPrefs(c *fiber.Ctx, userID string) error {
	var body schema.AlertPrefs
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	p, err := schema.CheckAlertPrefs(schema.MustJSON(body))
	if err != nil {
		return err
	}
	if err := s.Engine.SetAlertPrefs(c.UserContext(), userID, p); err != nil {
		return err
	}
	return s.getAlertPrefs(c, userID)
}

// failedAlerts lists deliveries given up and those failing now, with every attempt and the
// remote's answer.
func (s *Server) failedAlerts(c *fiber.Ctx) error {
	limit := 100
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return schema.FieldError(schema.CodeValidation, "limit", "limit must be a number from 1 to 500")
		}
		limit = n
	}
	items, err := notify.Failed(c.UserContext(), s.DB, limit)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items})
}

// visibleSettings hides the values of secret settings from everyone but admins.
func visibleSettings(all []schema.Doc, role string) []schema.Doc {
	if role == schema.RoleAdmin {
		return all
	}
	out := slices.Clone(all)
	for i, d := range out {
		if schema.SecretSetting(d.Str("key")) {
			out[i] = schema.Doc{"key": d["key"], "value": nil, "secret": true, "set": d.Str("value") != "", "description": d["description"],
				"kind": d["kind"], "min": d["min"], "max": d["max"]}
		}
	}
	return out
}
