package webfiles

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// TestSend: a browser gets the file compressed when it accepts gzip and the exact bytes after
// inflating; a revalidation with the ETag costs no body; images are never recompressed; every
// answer carries the page's policy and the no-sniff, no-frame headers.
func TestSend(t *testing.T) {
	js := New("main.js", []byte(strings.Repeat("export const 客户 = '张伟';\n", 200)))
	png := New("icon.png", bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 100))
	app := fiber.New()
	app.Get("/main.js", func(c *fiber.Ctx) error { return Send(c, js, "default-src 'self'") })
	app.Get("/icon.png", func(c *fiber.Ctx) error { return Send(c, png, "default-src 'self'") })

	get := func(path string, header ...string) (int, map[string]string, []byte) {
		req := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := app.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		h := map[string]string{}
		for k := range resp.Header {
			h[k] = resp.Header.Get(k)
		}
		return resp.StatusCode, h, body
	}

	status, h, body := get("/main.js", "Accept-Encoding", "gzip, br")
	if status != 200 || h["Content-Encoding"] != "gzip" || len(body) >= len(js.Body) {
		t.Fatalf("gzip answer: status %d, encoding %q, %d bytes for %d", status, h["Content-Encoding"], len(body), len(js.Body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, js.Body) {
		t.Fatal("the inflated answer differs from the file")
	}
	if h["Content-Type"] != "text/javascript; charset=utf-8" || h["Content-Security-Policy"] != "default-src 'self'" ||
		h["X-Content-Type-Options"] != "nosniff" || h["X-Frame-Options"] != "DENY" || h["Vary"] != "Accept-Encoding" {
		t.Fatalf("headers: %v", h)
	}

	status, _, body = get("/main.js")
	if status != 200 || !bytes.Equal(body, js.Body) {
		t.Fatalf("plain answer: status %d, %d bytes", status, len(body))
	}
	status, _, body = get("/main.js", "If-None-Match", h["Etag"], "Accept-Encoding", "gzip")
	if status != 304 || len(body) != 0 {
		t.Fatalf("revalidation: status %d with %d bytes", status, len(body))
	}
	status, h, body = get("/icon.png", "Accept-Encoding", "gzip")
	if status != 200 || h["Content-Encoding"] != "" || !bytes.Equal(body, png.Body) || h["Content-Type"] != "image/png" {
		t.Fatalf("png: status %d, encoding %q, type %q", status, h["Content-Encoding"], h["Content-Type"])
	}
}
