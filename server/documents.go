package server

import "github.com/gofiber/fiber/v2"

// documentRoutes registers the PDF endpoints.
func (s *Server) documentRoutes(office fiber.Router) {}
