// Package webfiles serves the files of the binary's two front ends, the office console and
// the field app: each file is prepared once (content type, ETag, gzip copy when it pays) and
// sent with the same security headers.
package webfiles

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// File is one file ready to send.
type File struct {
	Body  []byte
	gz    []byte // nil when compressing does not pay
	ctype string
	etag  string
}

// types are the content types the front ends use, with charsets where browsers want them.
var types = map[string]string{
	".js":          "text/javascript; charset=utf-8",
	".html":        "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".svg":         "image/svg+xml",
	".json":        "application/json; charset=utf-8",
	".webmanifest": "application/manifest+json",
	".png":         "image/png",
}

// New prepares body, named name, for sending.
func New(name string, body []byte) File {
	ctype, ok := types[path.Ext(name)]
	if !ok {
		ctype = mime.TypeByExtension(path.Ext(name))
	}
	sum := sha256.Sum256(body)
	f := File{Body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	if ctype != "image/png" {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		if buf.Len() < len(body) {
			f.gz = buf.Bytes()
		}
	}
	return f
}

// Send answers with f: revalidated on every use (no-cache with its ETag, 304 when unchanged),
// compressed when the client accepts gzip, and never framed, sniffed or leaking a referrer.
// csp is the page's Content-Security-Policy.
func Send(c *fiber.Ctx, f File, csp string) error {
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderETag, f.etag)
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderContentSecurityPolicy, csp)
	c.Set(fiber.HeaderContentType, f.ctype)
	if c.Get(fiber.HeaderIfNoneMatch) == f.etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	if f.gz != nil && strings.Contains(c.Get(fiber.HeaderAcceptEncoding), "gzip") {
		c.Set(fiber.HeaderContentEncoding, "gzip")
		return c.Send(f.gz)
	}
	return c.Send(f.Body)
}
