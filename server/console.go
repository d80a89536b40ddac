package server

import (
	"embed"
	"encoding/json"
	"io/fs"
	"strings"

	"github.com/gofiber/fiber/v2"

	"fieldsync/internal/webfiles"
	"fieldsync/schema"
)

// The coordinator web console: plain HTML, CSS and JavaScript modules embedded in the binary
// (no build step, nothing fetched from elsewhere), talking to /api/v1 like any other client.
// docs/console.md describes it.

//go:embed console
var consoleEmbed embed.FS

func init() {
	apiDoc = append(apiDoc, []routeDoc{
		{"GET", "/", "redirects to the web console (/console/)", "public", false},
		{"GET", "/console/*", "the coordinator web console: static HTML, CSS and JavaScript embedded in the binary; /console/meta.json holds the workflow table and enumerations it draws from", "public", false},
		{"GET", "/api/v1/demo", "demo mode only (404 otherwise): {demo: true, password, users: [{username, name, role}]} so the console can hint the demo logins", "public", false},
	}...)
}

// consoleFiles maps a path under /console/ ("" is the index) to its file, built once.
var consoleFiles = loadConsoleFiles()

func loadConsoleFiles() map[string]webfiles.File {
	files := map[string]webfiles.File{}
	err := fs.WalkDir(consoleEmbed, "console", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := consoleEmbed.ReadFile(p)
		name := strings.TrimPrefix(p, "console/")
		files[name] = webfiles.New(name, b)
		return err
	})
	if err != nil {
		panic("console: embedded files: " + err.Error()) // the files are compiled in
	}
	files[""] = files["index.html"]
	files["meta.json"] = webfiles.New("meta.json", consoleMeta())
	return files
}

// consoleMeta is schema.WorkflowMeta: the console offers exactly the actions the server
// allows.
func consoleMeta() []byte {
	b, err := json.Marshal(schema.WorkflowMeta())
	if err != nil {
		panic(err)
	}
	return b
}

// consoleCSP allows only the console's own files: no inline script, no other origin.
const consoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// consoleRoutes serves the web console at /console/ (and / redirects there) and, in demo
// mode, the demo logins at /api/v1/demo. Register it before the authenticated /api/v1 group
// so the demo route stays public.
func (s *Server) consoleRoutes(app *fiber.App) {
	app.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/console/", fiber.StatusFound) })
	app.Get("/console/*", s.serveConsole)
	app.Get("/api/v1/demo", s.demoInfo)
}

func (s *Server) serveConsole(c *fiber.Ctx) error {
	if c.Path() == "/console" {
		return c.Redirect("/console/", fiber.StatusMovedPermanently)
	}
	name := strings.TrimPrefix(c.Path(), "/console/")
	f, ok := consoleFiles[name]
	if !ok {
		return schema.Errorf(schema.CodeNotFound, "no console file %q", name)
	}
	return webfiles.Send(c, f, consoleCSP)
}

// demoInfo lists the demo accounts and their shared password for the login page's hint. It
// exists only on a server started with --demo, whose passwords are public anyway.
func (s *Server) demoInfo(c *fiber.Ctx) error {
	if !s.cfg.Demo {
		return schema.Errorf(schema.CodeNotFound, "this server runs no demo (start it with --demo)")
	}
	users := make([]fiber.Map, 0, len(DemoUsers))
	for _, u := range DemoUsers {
		users = append(users, fiber.Map{"username": u.Username, "name": u.Name, "role": u.Role})
	}
	return c.JSON(fiber.Map{"demo": true, "password": DemoPassword, "users": users})
}
