package mobileapi

import "github.com/gofiber/fiber/v2"

// monthRoutes registers the technician's own month figures.
func (a *API) monthRoutes(dev fiber.Router) {}
