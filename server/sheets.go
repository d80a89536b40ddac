package server

import "github.com/gofiber/fiber/v2"

// sheetRoutes registers the feedback sheet endpoints and the public verify page.
func (s *Server) sheetRoutes(app *fiber.App, office fiber.Router) {}
