package mobileapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/gofiber/fiber/v2"

	"fieldsync/internal/webfiles"
	"fieldsync/schema"
)

// The technicians' field app: plain HTML, CSS and JavaScript modules embedded in the binary
// (no build step, nothing fetched from elsewhere), served at /app/ and talking to /mobile/v1
// like any other field app. docs/field-app.md describes it.

//go:embed app
var appEmbed embed.FS

// AppShell is the app as served: files by path under /app/ ("" is the index) and the shell's
// version, a hash of every embedded file. The service worker (sw.js) carries the version and
// the list of shell files, so a binary with a changed app installs a new worker and the phone
// offers to reload.
type AppShell struct {
	Files   map[string]webfiles.File
	Version string
}

// appShell is built once at start (tests swap in a changed one to see phones update).
var appShell atomic.Pointer[AppShell]

func init() { appShell.Store(buildAppShell(nil)) }

// appShellFiles are the files the service worker caches for an offline start.
var appShellFiles = []string{"", "index.html", "app.css", "main.js", "ui.js", "i18n.js", "fieldsync.js", "completeness.js", "money.js",
	"meta.json", "manifest.webmanifest", "icon.svg", "icon-192.png", "icon-512.png"}

// buildAppShell reads the embedded files, with changed replacing some of them.
func buildAppShell(changed map[string][]byte) *AppShell {
	raw := map[string][]byte{}
	err := fs.WalkDir(appEmbed, "app", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := appEmbed.ReadFile(p)
		raw[strings.TrimPrefix(p, "app/")] = b
		return err
	})
	if err != nil {
		panic("app: embedded files: " + err.Error()) // the files are compiled in
	}
	raw["meta.json"] = appMeta()
	for name, b := range changed {
		raw[name] = b
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n + "\x00"))
		h.Write(raw[n])
		h.Write([]byte{0})
	}
	version := hex.EncodeToString(h.Sum(nil))[:16]
	list, _ := json.Marshal(appShellFiles)
	raw["sw.js"] = bytes.ReplaceAll(bytes.ReplaceAll(raw["sw.js"], []byte("__SHELL_VERSION__"), []byte(version)),
		[]byte(`["__SHELL_FILES__"]`), list)
	raw["version.json"] = []byte(`{"version":"` + version + `"}`)
	s := &AppShell{Files: map[string]webfiles.File{}, Version: version}
	for name, b := range raw {
		s.Files[name] = webfiles.New(name, b)
	}
	s.Files[""] = s.Files["index.html"]
	return s
}

// appMeta is schema.WorkflowMeta, so the app offers exactly the steps the server allows,
// with the defaults a phone needs before it has synced the settings.
func appMeta() []byte {
	m := schema.WorkflowMeta()
	defaults := schema.NewSettings(nil)
	m["sheet_required"] = defaults.List("sheet_required")
	m["blob_max_bytes"] = defaults.Int("blob_max_bytes")
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// appCSP allows only the app's own files and connections to its own server. The WebSocket
// origin is named as well: older WebKit does not count ws:// or wss:// as 'self'.
func appCSP(host string) string {
	ws := ""
	if validHost(host) {
		ws = " ws://" + host + " wss://" + host
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
		"connect-src 'self'" + ws + "; worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
}

// validHost accepts a Host header made of a name or address and a port, nothing else.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r)) {
			return false
		}
	}
	return true
}

// appRoutes serves the field app at /app/.
func (a *API) appRoutes(app *fiber.App) {
	app.Get("/app/*", serveApp)
}

func serveApp(c *fiber.Ctx) error {
	if c.Path() == "/app" {
		return c.Redirect("/app/", fiber.StatusMovedPermanently)
	}
	name := strings.TrimPrefix(c.Path(), "/app/")
	f, ok := appShell.Load().Files[name]
	if !ok {
		return schema.Errorf(schema.CodeNotFound, "no app file %q", name)
	}
	return webfiles.Send(c, f, appCSP(c.Get(fiber.HeaderHost)))
}
