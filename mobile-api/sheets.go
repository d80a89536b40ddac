package mobileapi

import "github.com/gofiber/fiber/v2"

// sheetRoutes registers the device's sheet documents.
func (a *API) sheetRoutes(dev fiber.Router) {}
