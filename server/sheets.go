package server

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	fiberlimiter "github.com/gofiber/fiber/v2/middleware/limiter"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

func init() {
	apiDoc = append(apiDoc, []routeDoc{
		{"GET", "/api/v1/sheets", "list feedback sheets (?ticket_id=&technician_id=&month=YYYY-MM&complete=true|false&status=a,b&limit=&offset=); month is the month of signing (or of creation for drafts) in the company's time zone", "office", false},
		{"GET", "/api/v1/sheets/{id}", "one feedback sheet", "office", false},
		{"POST", "/api/v1/sheets/{id}/actions/{action}", "receive (moves a completed ticket to sheet_received), return {reason} (coordinator, admin); accept_exception {note} (manager, admin)", "coordinator, manager, admin", true},
		{"GET", "/api/v1/tickets/{id}/sheets", "the feedback sheets of a ticket, corrections and void ones included", "office", false},
		{"GET", "/verify/key", "the public Ed25519 key that seals feedback sheets (hex and PEM)", "public", false},
		{"GET", "/verify/key.pem", "the public seal key as a PEM file (for openssl)", "public", false},
		{"GET", "/verify/{sheet_id}", "verify a feedback sheet (?fp=fingerprint from the printed copy): HTML, or JSON with Accept: application/json", "public", false},
		{"GET", "/verify/{sheet_id}/{fingerprint}", "verify a feedback sheet against the fingerprint of a printed copy", "public", false},
	}...)
}

// sheetRoutes registers the feedback sheet endpoints and the public verify page.
func (s *Server) sheetRoutes(app *fiber.App, office fiber.Router) {
	office.Get("/sheets", s.listSheets)
	office.Get("/sheets/:id", s.getRecord(schema.EntSheet))
	office.Post("/sheets/:id/actions/:action", s.action(schema.EntSheet))
	office.Get("/tickets/:id/sheets", s.ticketSheets)

	verify := app.Group("/verify", publicPageHeaders, fiberlimiter.New(fiberlimiter.Config{
		Max:          s.cfg.VerifyPerMinute,
		Expiration:   time.Minute,
		KeyGenerator: func(c *fiber.Ctx) string { return c.IP() },
		LimitReached: func(c *fiber.Ctx) error {
			return schema.Errorf(schema.CodeRateLimited, "验证请求过于频繁，请一分钟后再试 / too many verify requests from your address: wait a minute")
		},
	}))
	verify.Get("/key", s.verifyKey)
	verify.Get("/key.pem", s.verifyKeyPEM)
	verify.Get("/:sheet_id/:fingerprint", s.verifySheet)
	verify.Get("/:sheet_id", s.verifySheet)
}

// DefaultVerifyPerMinute is how many requests one address may make to the public /verify
// pages a minute: far more than anyone checking printed sheets by hand needs, few enough
// that a flood cannot take the server's time from technicians.
const DefaultVerifyPerMinute = 60

// publicPageHeaders marks the public verify answers: no script, style only inline, no
// other resource, never framed (so no click-jacking), no content sniffing, and no
// Referer carrying a fingerprint to other sites.
func publicPageHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	return c.Next()
}

func (s *Server) listSheets(c *fiber.Ctx) error {
	when := "COALESCE(data ->> 'signed_at', data ->> 'created_at')"
	q := syncer.Query{Entity: schema.EntSheet, Order: when + " DESC, id"}
	for _, p := range []string{"ticket_id", "technician_id"} {
		if v := c.Query(p); v != "" {
			q.Where, q.Args = append(q.Where, p+" = ?"), append(q.Args, v)
		}
	}
	if v := c.Query("status"); v != "" {
		list := strings.Split(v, ",")
		for _, st := range list {
			if !slices.Contains(schema.SheetStatuses, st) {
				return schema.FieldError(schema.CodeValidation, "status", "status %q is not one of %s", st, strings.Join(schema.SheetStatuses, ", "))
			}
		}
		q.Where = append(q.Where, "status IN (SELECT value FROM json_each(?))")
		q.Args = append(q.Args, string(schema.MustJSON(list)))
	}
	if v := c.Query("complete"); v != "" {
		if v != "true" && v != "false" {
			return schema.FieldError(schema.CodeValidation, "complete", "complete must be true or false")
		}
		// data -> 'complete' is the JSON text true or false in both stores.
		q.Where, q.Args = append(q.Where, "COALESCE(CAST(data -> 'complete' AS TEXT), 'false') = ?"), append(q.Args, v)
	}
	if v := c.Query("month"); v != "" {
		start, end, err := schema.ParseMonth(v, s.Engine.Settings().Location(), time.Time{})
		if err != nil {
			return err
		}
		q.Where = append(q.Where, when+" >= ? AND "+when+" < ?")
		q.Args = append(q.Args, schema.Stamp(start), schema.Stamp(end))
	}
	return s.list(c, q)
}

func (s *Server) ticketSheets(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	if _, err := s.Engine.Get(c.UserContext(), schema.EntTicket, id); err != nil {
		return err
	}
	items, err := s.Engine.List(c.UserContext(), syncer.Query{Entity: schema.EntSheet, Where: []string{"ticket_id = ?"}, Args: []any{id},
		Order: "data ->> 'created_at', id"})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "total": len(items)})
}

// publicKeyPEM is the seal key as a PKIX "PUBLIC KEY" block, the form openssl reads.
func (s *Server) publicKeyPEM() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(s.Sealer.Public())
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

func (s *Server) verifyKey(c *fiber.Ctx) error {
	p, err := s.publicKeyPEM()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	return c.JSON(fiber.Map{"algorithm": "Ed25519", "public_key_hex": s.Sealer.PublicHex(), "public_key_pem": p,
		"signed_message": "the sheet's fingerprint: 64 lower-case hex characters, as ASCII bytes", "seal_encoding": "base64 (standard, padded)"})
}

func (s *Server) verifyKeyPEM(c *fiber.Ctx) error {
	p, err := s.publicKeyPEM()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/x-pem-file")
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	return c.SendString(p)
}

// verifySheet is the public verify page: anyone holding a sheet (or its PDF's QR code) checks
// that it is genuine and unaltered. It shows only what is printed on the sheet.
func (s *Server) verifySheet(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("sheet_id"))
	fp := strings.Clone(c.Params("fingerprint"))
	if fp == "" {
		fp = strings.Clone(c.Query("fp"))
	}
	wantJSON := strings.Contains(c.Get(fiber.HeaderAccept), "application/json")
	c.Set(fiber.HeaderCacheControl, "no-store")
	v, err := s.Engine.VerifySheet(c.UserContext(), id, fp)
	if err != nil {
		if se, ok := schema.AsError(err); ok && se.Code == schema.CodeNotFound {
			err = schema.Errorf(schema.CodeNotFound, "no feedback sheet %q", id)
			if !wantJSON {
				return s.verifyHTML(c, fiber.StatusNotFound, nil, id)
			}
		}
		return err
	}
	if wantJSON {
		return c.JSON(v)
	}
	return s.verifyHTML(c, fiber.StatusOK, v, id)
}

func (s *Server) verifyHTML(c *fiber.Ctx, status int, v *syncer.SheetVerdict, id string) error {
	var b bytes.Buffer
	if err := verifyPage.Execute(&b, map[string]any{"V": v, "ID": id, "Company": s.Engine.Settings().String("company_name"), "Key": s.Sealer.PublicHex(),
		"Loc": s.Engine.Settings().Location()}); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Status(status).Send(b.Bytes())
}

var verifyPage = template.Must(template.New("verify").Funcs(template.FuncMap{
	"deref": func(b *bool) bool { return b != nil && *b },
	// local shows an RFC 3339 time in the company's time zone (the timezone setting).
	"local": func(loc *time.Location, s string) string {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || loc == nil {
			return s
		}
		return t.In(loc).Format("2006-01-02 15:04:05") + " (" + loc.String() + ")"
	},
	// item names a sheet's item in words (schema.ItemLabel), never by its field name.
	"item": func(field string) string { l, _ := schema.ItemLabel(schema.EntSheet, field); return l.Both() },
	"offset": func(ms int64) string {
		sign := "+"
		if ms < 0 {
			sign, ms = "-", -ms
		}
		return fmt.Sprintf("%s%.1f s", sign, float64(ms)/1000)
	},
}).Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>服务反馈单验证 Feedback sheet verification</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em;color:#222}
.ok{color:#0a6b2d}.bad{color:#b00020}table{border-collapse:collapse}td{padding:.3em .8em .3em 0;vertical-align:top}
code{word-break:break-all}</style></head><body>
<h1>服务反馈单验证<br><small>Feedback sheet verification</small></h1>
<p>{{.Company}}</p>
{{with .V}}
{{if not .Fingerprint}}{{if not .Withheld}}<h2 class="bad">✘ 未签署，不能作为凭证<br><small>Not signed: this sheet proves nothing yet</small></h2>
{{else}}{{if .Valid}}<h2 class="ok">✔ 封签有效<br><small>Seal valid: a genuine, unaltered sheet</small></h2>{{else}}<h2 class="bad">✘ 验证未通过<br><small>Not valid</small></h2>
<ul>{{range .Reasons}}<li class="bad">{{.}}</li>{{end}}</ul>{{end}}
<p>扫描副本上的二维码，或在地址后加上副本上印的指纹（/verify/{{.SheetID}}/指纹），可查看反馈单内容。<br>
<small>Scan the QR code on your copy, or add the fingerprint printed on it to the address (/verify/{{.SheetID}}/fingerprint), to see what the sheet says.</small></p>
{{if .GivenFingerprint}}<p class="bad">您的副本上的指纹 {{.GivenFingerprint}} 与此反馈单不一致<br><small>The fingerprint on your copy does not match this sheet</small></p>{{end}}{{end}}
{{else}}
{{if .Valid}}<h2 class="ok">✔ 封签有效，内容未被改动<br><small>Seal valid: the sheet is genuine and unaltered</small></h2>
{{else}}<h2 class="bad">✘ 验证未通过<br><small>Not valid</small></h2>
<ul>{{range .Reasons}}<li class="bad">{{.}}</li>{{end}}</ul>{{end}}
{{if .Notice}}<p><strong>注意 Notice:</strong> {{.Notice}}</p>{{end}}
<table>
<tr><td>反馈单号 Sheet number</td><td>{{.Number}}</td></tr>
<tr><td>日期 Date</td><td>{{.Date}}</td></tr>
<tr><td>客户 Customer</td><td>{{.Customer}}</td></tr>
<tr><td>技术员 Technician</td><td>{{.Technician}}</td></tr>
<tr><td>签署时间（设备）Signed (device time)</td><td>{{local $.Loc .SignedAt}}{{with .DeviceClockOffsetMS}}<br><small>手机时钟与服务器相差 {{offset .}}（最近一次同步时）phone clock {{offset .}} off the server's when it last synced</small>{{end}}{{if .ClockFlag}}<br><span class="bad">{{.ClockFlag}}</span>{{end}}</td></tr>
<tr><td>服务器接收时间 Received by the server</td><td>{{local $.Loc .ReceivedAt}}</td></tr>
<tr><td>状态 Status</td><td>{{.Status}}</td></tr>
<tr><td>来源 Origin</td><td id="origin">{{if eq .Origin "paper"}}纸质反馈单，由 {{.EnteredBy}} 录入，附扫描件 {{.ScanPages}} 页 · paper sheet entered by {{.EnteredBy}}, with a scan of {{.ScanPages}} page(s){{else}}手机签署 signed on the technician's phone{{end}}</td></tr>
<tr><td>封签 Seal</td><td>{{if .Seal}}已封签 Sealed{{else}}<span class="bad">未封签 Not sealed</span>{{end}}</td></tr>
<tr><td>完整性 Completeness</td><td>{{if .Complete}}完整 Complete{{else}}<span class="bad">不完整 Incomplete</span>{{if .Missing}}：缺 missing {{range $i, $m := .Missing}}{{if $i}}、{{end}}{{item $m}}{{end}}{{end}}{{end}}</td></tr>
<tr><td>例外 Exception</td><td>{{if .ExceptionAccepted}}已接受 accepted · {{.ExceptionBy}} · {{.ExceptionAt}}{{if .ExceptionNote}} · {{.ExceptionNote}}{{end}}{{else}}无 none{{end}}</td></tr>
<tr><td>封签指纹 Fingerprint</td><td><code>{{.Fingerprint}}</code></td></tr>
<tr><td>设备签名 Device signature</td><td>{{if .DeviceSigned}}<span id="device-signature" class="{{if and .DeviceValid (not .DeviceChainGap)}}ok{{else}}bad{{end}}">{{.DeviceNote}}</span>{{else}}<span id="device-signature">{{.DeviceNote}}</span>{{end}}</td></tr>
{{if .DeviceSigned}}{{if .DeviceName}}<tr><td>签名手机 Signed on</td><td>{{.DeviceUser}} 的手机 · {{.DeviceUser}}'s phone: {{.DeviceName}}{{if .DeviceRevokedAt}}<br><small>停用于 revoked at {{local $.Loc .DeviceRevokedAt}}</small>{{end}}</td></tr>{{end}}
<tr><td>设备时间 Device time</td><td>{{local $.Loc .DeviceTime}}</td></tr>
<tr><td>设备指纹 Device fingerprint</td><td><code>{{.DeviceFP}}</code></td></tr>
<tr><td>设备签名值 Device signature (r‖s, base64)</td><td><code>{{.DeviceSig}}</code></td></tr>
<tr><td>上一设备签名 Previous device signature</td><td><code>{{.DevicePrev}}</code></td></tr>
<tr><td>设备公钥 Device public key (P-256, SPKI base64)</td><td><code>{{.DeviceKey}}</code></td></tr>{{end}}
{{if .GivenFingerprint}}<tr><td>您的副本上的指纹 Fingerprint on your copy</td><td><code>{{.GivenFingerprint}}</code> {{if .FingerprintMatches}}{{if deref .FingerprintMatches}}<span class="ok">一致 matches</span>{{else}}<span class="bad">不一致 does not match</span>{{end}}{{end}}</td></tr>{{end}}
</table>
{{end}}
{{else}}
<h2 class="bad">✘ 未找到反馈单 {{.ID}}<br><small>No feedback sheet {{.ID}}</small></h2>
{{end}}
<p><small>公钥 Public key (Ed25519): <code>{{.Key}}</code> · <a href="/verify/key">/verify/key</a></small></p>
<p><small>封签与设备签名均可用 OpenSSL 手工核验，方法见 docs/feedback-sheets.md「Verification」。<br>Both the seal and the device signature can be checked by hand with OpenSSL: see docs/feedback-sheets.md, "Verification".</small></p>
</body></html>
`))
