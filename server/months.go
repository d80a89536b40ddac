package server

import "github.com/gofiber/fiber/v2"

// monthRoutes registers the month-end endpoints.
func (s *Server) monthRoutes(office fiber.Router) {}
