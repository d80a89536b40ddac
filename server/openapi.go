package server

import (
	"encoding/json"
	"regexp"
	"strings"
	gosync "sync"

	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
)

// routeDoc describes one route: method, path in OpenAPI form, what it does, who may call it,
// and whether it takes a JSON body.
type routeDoc struct {
	Method, Path, Summary, Roles string
	Body                         bool
}

// apiDoc describes each route for the OpenAPI document. A test fails when a registered
// route is missing here, so the document stays true.
var apiDoc = []routeDoc{
	{"GET", "/healthz", "process is up", "public", false},
	{"GET", "/readyz", "database answers", "public", false},
	{"GET", "/api/v1/openapi.json", "this document", "public", false},
	{"POST", "/api/v1/auth/login", "log in {username, password} → {token, expires_at, user, must_change_password?}", "public", true},
	{"POST", "/mobile/v1/auth/login", "device login {username, password, device_id, device_name} → {token, expires_at, user, device}", "public", true},
	{"POST", "/api/v1/auth/password", "change your own password {current_password, new_password} → a fresh session {token, expires_at, user}; earlier tokens stop", "any", true},
	{"POST", "/api/v1/auth/logout", "revoke this token", "any", false},
	{"GET", "/api/v1/me", "the logged-in user", "any", false},
	{"PATCH", "/api/v1/me", "change my own email and phone {email?, phone?} (where alert mail and text messages go); any other field is refused", "any", true},
	{"GET", "/api/v1/users", "list users", "office", false},
	{"POST", "/api/v1/users", "create a user {username, name, role, phone, email, dedicated, probation, password}", "admin", true},
	{"GET", "/api/v1/me/alerts", "my alert preferences {lang, events: {event: [channel]}} (the role's defaults until set)", "any", false},
	{"PUT", "/api/v1/me/alerts", "set my alert preferences {lang, events}", "any", true},
	{"GET", "/api/v1/users/{id}/alerts", "a user's alert preferences", "admin", false},
	{"PUT", "/api/v1/users/{id}/alerts", "set a user's alert preferences {lang, events}", "admin", true},
	{"GET", "/api/v1/alerts/failed", "alert deliveries given up or failing now, with every attempt and the remote's answer (?limit=)", "admin", false},
	{"PATCH", "/api/v1/users/{id}", "edit a user {name, role, phone, email, dedicated, probation, active, employment: [{from, probation, dedicated}]} (If-Match); active: false ends their sessions and closes their connections at once", "admin", true},
	{"POST", "/api/v1/users/{id}/password", "reset a user's password {password}; their sessions end", "admin", true},
	{"GET", "/api/v1/devices", "list devices (?user_id=)", "office", false},
	{"GET", "/api/v1/devices/{id}/clock", "a device's clock history: {device, items: [{at, offset_ms}], total}, newest first (limit, offset)", "admin, manager", false},
	{"POST", "/api/v1/devices/{id}/revoke", "revoke a device: its token stops, its connections close with 4403", "coordinator, admin", false},
	{"POST", "/api/v1/customers", "create a customer {name, phone, address, notes}", "office", true},
	{"GET", "/api/v1/customers", "list customers (?q=, limit, offset)", "office", false},
	{"GET", "/api/v1/customers/{id}", "one customer", "office", false},
	{"PATCH", "/api/v1/customers/{id}", "edit a customer (If-Match: version)", "office", true},
	{"POST", "/api/v1/customers/{id}/sites", "create a site {name, address, contacts: [{name, phone}]}", "office", true},
	{"GET", "/api/v1/customers/{id}/sites", "a customer's sites", "office", false},
	{"GET", "/api/v1/sites/{id}", "one site", "office", false},
	{"PATCH", "/api/v1/sites/{id}", "edit a site (If-Match)", "office", true},
	{"POST", "/api/v1/assets", "create an asset {customer_id, site_id, model, serial, install_date, warranty_until, manufacturer, manufacturer_onsite}", "office", true},
	{"GET", "/api/v1/assets", "find assets (?serial=, customer_id=); warranty_now shows today's warranty status", "office", false},
	{"GET", "/api/v1/assets/{id}", "one asset", "office", false},
	{"PATCH", "/api/v1/assets/{id}", "edit an asset (If-Match)", "office", true},
	{"POST", "/api/v1/tickets", "register a request (intake)", "office", true},
	{"GET", "/api/v1/tickets", "list tickets (?status=a,b&assignee=&source=&overdue=true&q=&from=&to=&customer_id=&limit=&offset=)", "office", false},
	{"GET", "/api/v1/tickets/{id}", "a ticket with its events, sheets, complaints and follow-ups", "office", false},
	{"PATCH", "/api/v1/tickets/{id}", "edit ticket fields (If-Match: version)", "office", true},
	{"GET", "/api/v1/tickets/{id}/history", "the change log of the ticket and its records", "office", false},
	{"GET", "/api/v1/tickets/{id}/events", "the ticket's events, oldest first, paged (limit, offset; total)", "office", false},
	{"GET", "/api/v1/tickets/{id}/sheets", "the ticket's feedback sheets, oldest first, paged (limit, offset; total)", "office", false},
	{"POST", "/api/v1/tickets/{id}/actions/{action}", "a workflow step (verify, reject, dispatch, escalate, accept, en_route, arrive, start, complete, cancel, receive_sheet, close, reopen) with its parameters", "per docs/workflow.md", true},
	{"POST", "/api/v1/tickets/{id}/notes", "add a note {note}", "office", true},
	{"POST", "/api/v1/tickets/{id}/complaints", "record a complaint {description, technician_id?, received_at?}", "office", true},
	{"POST", "/api/v1/tickets/{id}/followups", "log a follow-up call {outcome, notes, called_at?}", "manager, coordinator, admin", true},
	{"GET", "/api/v1/complaints", "complaints (?month=YYYY-MM, technician_id, ticket_id)", "office", false},
	{"POST", "/api/v1/complaints/{id}/actions/{action}", "uphold or dismiss a complaint {note}", "manager, admin", true},
	{"POST", "/api/v1/approvals", "request an approval {kind: taxi|freight|credit|software_charge, amount_fen, reason, technician_id, sale_id?, ticket_id?} (docs/money.md)", "office", true},
	{"GET", "/api/v1/approvals", "approval requests, newest first (?status, kind, technician_id, decider_role, sale_id): the manager's and leadership's queues", "office", false},
	{"GET", "/api/v1/approvals/{id}", "one approval request", "office", false},
	{"POST", "/api/v1/approvals/{id}/actions/{action}", "approve {note?} or decline {note}: only the role the request needs (decider_role)", "manager, leader", true},
	{"POST", "/api/v1/expenses", "record an expense {kind, amount_fen, technician_id, approval_id?, receipt_blob?, spent_on?, ticket_id?, note?}", "office", true},
	{"GET", "/api/v1/expenses", "expenses, newest first (?status, kind, technician_id, approval_id)", "office", false},
	{"GET", "/api/v1/expenses/{id}", "one expense", "office", false},
	{"POST", "/api/v1/expenses/{id}/actions/{action}", "reimburse, or refuse {note}", "manager, coordinator, admin (refuse: manager, admin)", true},
	{"POST", "/api/v1/sales", "record a sale {kind: parts|software, customer_id, technician_id, lines: [{item, qty, price_fen}], ticket_id?}", "office", true},
	{"GET", "/api/v1/sales", "sales, newest first (?kind, technician_id, customer_id)", "office", false},
	{"GET", "/api/v1/sales/{id}", "one sale with its payments", "office", false},
	{"PATCH", "/api/v1/sales/{id}", "add the cost {cost_fen} (If-Match: version)", "office", true},
	{"POST", "/api/v1/sales/{id}/actions/{action}", "pay {amount_fen, charge_approval_id?}, ship {credit_approval_id?}, invoice, charge_liability {share_pct} (leader)", "commerce, coordinator, manager, admin; charge_liability: leader", true},
	{"POST", "/api/v1/repairs", "record a device going back for repair {asset_id, fault, technician_id, ticket_id?} (docs/money.md)", "office", true},
	{"GET", "/api/v1/repairs", "repairs, newest first (?status, technician_id, customer_id, asset_id)", "office", false},
	{"GET", "/api/v1/repairs/{id}", "one repair with its warranty answer, quote, confirmation and payments", "office", false},
	{"POST", "/api/v1/repairs/{id}/actions/{action}", "answer_warranty {in_warranty, manufacturer_onsite}, quote {repair_fen, shipping_fen}, receive, repaired (commerce, admin); confirm {confirmed_by}, ship, return, pay {amount_fen}", "by step (docs/money.md)", true},
	{"POST", "/api/v1/unreported-charges", "record a charge the technician never reported, on an upheld complaint {complaint_id, amount_fen, note?}: deducted with the penalty", "manager, leader", true},
	{"GET", "/api/v1/unreported-charges", "unreported charges, newest first (?technician_id, complaint_id)", "office", false},
	{"GET", "/api/v1/unreported-charges/{id}", "one unreported charge", "office", false},
	{"GET", "/api/v1/receivables", "shipped sales still owed, oldest first, with age in days and bucket; sums per bucket (?technician_id)", "office", false},
	{"GET", "/api/v1/followups", "follow-up calls (?month=YYYY-MM, technician_id, ticket_id)", "office", false},
	{"GET", "/api/v1/settings", "every setting with its value (a secret one's value only for admins), default and range (min, max)", "office", false},
	{"GET", "/api/v1/settings/history", "who changed which setting when, newest first: [{id (the key), actor_id, at, fields: {value: [old, new]}}] (?key=, limit, offset)", "office", false},
	{"PUT", "/api/v1/settings", "set settings {key: value, ...}, all or nothing; a value out of its range is refused", "admin", true},
	{"GET", "/mobile/v1/sync", "WebSocket sync (subprotocol fieldsync.v1), see docs/sync-protocol.md", "device", false},
	{"POST", "/mobile/v1/sync/pull", "HTTP fallback pull {checkpoint, limit}", "device", true},
	{"POST", "/mobile/v1/sync/push", "HTTP fallback push {mutations}", "device", true},
	{"HEAD", "/mobile/v1/blobs/{sha256}", "blob status: 200 whole, 404 with Upload-Offset", "device", false},
	{"PATCH", "/mobile/v1/blobs/{sha256}", "append a chunk (Upload-Offset, Upload-Length)", "device", true},
	{"GET", "/mobile/v1/blobs/{sha256}", "download a blob in the device's scope", "device", false},
	{"GET", "/app/*", "the technicians' field app: static HTML, CSS and JavaScript embedded in the binary, gzip; /app/meta.json holds the workflow table, /app/sw.js the service worker (see docs/field-app.md)", "public", false},
}

var paramRe = regexp.MustCompile(`:([a-z_0-9]+)`)

// OpenAPIPath converts a Fiber route path to OpenAPI's form.
func OpenAPIPath(p string) string { return paramRe.ReplaceAllString(p, "{$1}") }

// opSchema gives a route its body and answer schemas, generated from the entity table
// (schema.Entity.OpenAPISchema): Req is schema.SchemaCreate or SchemaPatch for a body of
// Entity's fields (Omit: those the URL gives), Res "record" or "list" of Entity; Created says
// the route answers 201. Ref names a hand-written component instead (logins, devices).
type opSchema struct {
	Entity  string
	Req     string
	Omit    []string
	Res     string
	Created bool
	ReqRef  string
	ResRef  string
}

// apiSchemas maps "METHOD path" to its schemas. Routes without an entry keep a free-form
// object body and an answer described in words.
var apiSchemas = func() map[string]opSchema {
	m := map[string]opSchema{
		"POST /api/v1/auth/login":              {ReqRef: "Login", ResRef: "Session"},
		"POST /mobile/v1/auth/login":           {ReqRef: "DeviceLogin", ResRef: "Session"},
		"GET /api/v1/me":                       {ResRef: "Me"},
		"GET /api/v1/devices":                  {ResRef: "DeviceList"},
		"GET /api/v1/users":                    {Entity: schema.EntUser, Res: "list"},
		"PATCH /api/v1/users/{id}":             {Entity: schema.EntUser, Req: schema.SchemaPatch, Res: "record"},
		"GET /api/v1/tickets/{id}":             {Entity: schema.EntTicket, Res: "record"},
		"POST /api/v1/tickets/{id}/notes":      {Entity: schema.EntTicketEvent, Req: schema.SchemaCreate, Omit: []string{"ticket_id"}, Res: "record", Created: true},
		"POST /api/v1/tickets/{id}/complaints": {Entity: schema.EntComplaint, Req: schema.SchemaCreate, Omit: []string{"ticket_id"}, Res: "record", Created: true},
		"POST /api/v1/tickets/{id}/followups":  {Entity: schema.EntFollowup, Req: schema.SchemaCreate, Omit: []string{"ticket_id"}, Res: "record", Created: true},
		"POST /api/v1/customers/{id}/sites":    {Entity: schema.EntSite, Req: schema.SchemaCreate, Omit: []string{"customer_id"}, Res: "record", Created: true},
		"GET /api/v1/customers/{id}/sites":     {Entity: schema.EntSite, Res: "list"},
		"GET /api/v1/complaints":               {Entity: schema.EntComplaint, Res: "list"},
		"GET /api/v1/followups":                {Entity: schema.EntFollowup, Res: "list"},
		"GET /api/v1/sheets/{id}":              {Entity: schema.EntSheet, Res: "record"},
	}
	// The plain record routes: create, list, read, edit.
	for path, ent := range map[string]string{"customers": schema.EntCustomer, "sites": schema.EntSite, "assets": schema.EntAsset,
		"tickets": schema.EntTicket, "approvals": schema.EntApproval, "expenses": schema.EntExpense, "sales": schema.EntSale} {
		base := "/api/v1/" + path
		if path != "sites" {
			m["POST "+base] = opSchema{Entity: ent, Req: schema.SchemaCreate, Res: "record", Created: true}
			m["GET "+base] = opSchema{Entity: ent, Res: "list"}
		}
		if _, ok := m["GET "+base+"/{id}"]; !ok {
			m["GET "+base+"/{id}"] = opSchema{Entity: ent, Res: "record"}
		}
		if e, _ := schema.LookupEntity(ent); len(e.UpdateRoles) > 0 {
			m["PATCH "+base+"/{id}"] = opSchema{Entity: ent, Req: schema.SchemaPatch, Res: "record"}
		}
	}
	return m
}()

// schemaName is an entity's component name: feedback_sheet → FeedbackSheet.
func schemaName(entity string) string {
	var b strings.Builder
	for _, part := range strings.Split(entity, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func ref(name string) fiber.Map { return fiber.Map{"$ref": "#/components/schemas/" + name} }

func jsonContent(schema any) fiber.Map {
	return fiber.Map{"application/json": fiber.Map{"schema": schema}}
}

// openAPIDoc builds the document.
func openAPIDoc() fiber.Map {
	paths := map[string]fiber.Map{}
	for _, r := range apiDoc {
		if paths[r.Path] == nil {
			paths[r.Path] = fiber.Map{}
		}
		sc, typed := apiSchemas[r.Method+" "+r.Path]
		ok := fiber.Map{"description": "success"}
		switch {
		case sc.ResRef != "":
			ok["content"] = jsonContent(ref(sc.ResRef))
		case sc.Res == "record":
			ok["content"] = jsonContent(ref(schemaName(sc.Entity)))
		case sc.Res == "list":
			ok["content"] = jsonContent(fiber.Map{"type": "object", "required": []string{"items"}, "properties": fiber.Map{
				"items": fiber.Map{"type": "array", "items": ref(schemaName(sc.Entity))},
				"total": fiber.Map{"type": "integer"}, "limit": fiber.Map{"type": "integer"}, "offset": fiber.Map{"type": "integer"}}})
		}
		status := "200"
		if sc.Created {
			status = "201"
		}
		if !typed {
			ok["description"] = "success (201 for creations)"
		}
		op := fiber.Map{"summary": r.Summary, "description": "roles: " + r.Roles,
			"responses": fiber.Map{status: ok, "default": fiber.Map{"description": "error", "content": jsonContent(ref("Error"))}}}
		var params []fiber.Map
		for _, m := range pathParamRe.FindAllStringSubmatch(r.Path, -1) {
			params = append(params, fiber.Map{"name": m[1], "in": "path", "required": true, "schema": fiber.Map{"type": "string"}})
		}
		if sc.Req == schema.SchemaPatch {
			params = append(params, fiber.Map{"name": "If-Match", "in": "header", "required": true,
				"description": "the version being edited", "schema": fiber.Map{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		switch {
		case sc.ReqRef != "":
			op["requestBody"] = fiber.Map{"required": true, "content": jsonContent(ref(sc.ReqRef))}
		case sc.Req != "":
			e, _ := schema.LookupEntity(sc.Entity)
			op["requestBody"] = fiber.Map{"required": true, "content": jsonContent(e.OpenAPISchema(sc.Req, schema.SideOffice, sc.Omit...))}
		case r.Body:
			op["requestBody"] = fiber.Map{"content": jsonContent(fiber.Map{"type": "object"})}
		}
		if r.Roles != "public" {
			op["security"] = []fiber.Map{{"bearer": []string{}}}
		}
		paths[r.Path][strings.ToLower(r.Method)] = op
	}
	schemas := fiber.Map{
		"Error": fiber.Map{"type": "object", "required": []string{"error"}, "properties": fiber.Map{"error": fiber.Map{"type": "object",
			"required": []string{"code", "message"},
			"properties": fiber.Map{
				"code":    fiber.Map{"type": "string", "enum": errorCodes},
				"message": fiber.Map{"type": "string", "description": "for a person, in the request's Accept-Language (Chinese and English when it names neither)"},
				"field":   fiber.Map{"type": "string", "description": "the field at fault, as named in the request"},
				"item":    fiber.Map{"type": "string", "description": "the field at fault in words, in the answer's language"},
				"record":  fiber.Map{"type": "object", "description": "the current record (conflict, invalid_transition)"}}}}},
		"Login": fiber.Map{"type": "object", "required": []string{"username", "password"}, "additionalProperties": false, "properties": fiber.Map{
			"username": fiber.Map{"type": "string", "maxLength": 64, "example": "coord"}, "password": fiber.Map{"type": "string", "maxLength": 72}}},
		"DeviceLogin": fiber.Map{"type": "object", "required": []string{"username", "password", "device_id"}, "properties": fiber.Map{
			"username": fiber.Map{"type": "string"}, "password": fiber.Map{"type": "string"}, "device_id": fiber.Map{"type": "string"},
			"device_name": fiber.Map{"type": "string"}, "public_key": fiber.Map{"type": "string"}}},
		"Session": fiber.Map{"type": "object", "required": []string{"token", "expires_at", "user"}, "properties": fiber.Map{
			"token": fiber.Map{"type": "string"}, "expires_at": fiber.Map{"type": "string", "format": "date-time"}, "user": ref("User"),
			"device": fiber.Map{"type": "string"}, "must_change_password": fiber.Map{"type": "boolean"}}},
		"Me": fiber.Map{"type": "object", "required": []string{"user", "expires_at"}, "properties": fiber.Map{
			"user": ref("User"), "expires_at": fiber.Map{"type": "string", "format": "date-time"}, "device": fiber.Map{"type": "string"},
			"must_change_password": fiber.Map{"type": "boolean"}}},
		"DeviceList": fiber.Map{"type": "object", "required": []string{"items"}, "properties": fiber.Map{"items": fiber.Map{"type": "array", "items": ref("Device")}}},
		"Device": fiber.Map{"type": "object", "required": []string{"id", "user_id", "device_id", "name", "last_seen_at", "app_version", "pending"}, "properties": fiber.Map{
			"id": fiber.Map{"type": "string"}, "user_id": fiber.Map{"type": "string"}, "device_id": fiber.Map{"type": "string"}, "name": fiber.Map{"type": "string"},
			"created_at": fiber.Map{"type": "string", "format": "date-time"}, "last_seen_at": fiber.Map{"type": "string", "format": "date-time"},
			"revoked_at": fiber.Map{"type": "string", "format": "date-time", "nullable": true}, "public_key": fiber.Map{"type": "string", "nullable": true},
			"clock_offset_ms": fiber.Map{"type": "integer", "nullable": true},
			"app_version":     fiber.Map{"type": "string", "description": "应用版本 app version, from the last hello"},
			"pending":         fiber.Map{"type": "integer", "minimum": 0, "nullable": true, "description": "待上传数 mutations waiting on the device, from the last hello"},
			"pending_since":   fiber.Map{"type": "string", "format": "date-time", "nullable": true, "description": "最早待上传时间 when the oldest waiting one was made"},
			"reported_at":     fiber.Map{"type": "string", "format": "date-time", "nullable": true}}},
	}
	for name, e := range schema.Entities() {
		schemas[schemaName(name)] = e.OpenAPISchema(schema.SchemaRecord, schema.SideOffice)
	}
	return fiber.Map{
		"openapi": "3.0.3",
		"info": fiber.Map{"title": "fieldsync", "version": "1", "description": "The after-sales service server's API (docs/api.md). " +
			"Request and record schemas are generated from the entity table that validates writes. Errors: {\"error\": {code, message, field?, item?, record?}}."},
		"paths":      paths,
		"components": fiber.Map{"securitySchemes": fiber.Map{"bearer": fiber.Map{"type": "http", "scheme": "bearer"}}, "schemas": schemas},
	}
}

var pathParamRe = regexp.MustCompile(`\{([a-z_0-9]+)\}`)

// errorCodes is every code an error may carry.
var errorCodes = []string{schema.CodeBadRequest, schema.CodeValidation, schema.CodeUnauthenticated, schema.CodeForbidden,
	schema.CodeOutOfScope, schema.CodeNotFound, schema.CodeMethodNotAllowed, schema.CodeConflict, schema.CodeInvalidTransition,
	schema.CodeSealed, schema.CodeMissingBlob, schema.CodeDependsOnRejected, schema.CodeTooLarge, schema.CodeUnsupportedMedia,
	schema.CodeHashMismatch, schema.CodeDeviceSignature, schema.CodeRateLimited, schema.CodeCheckpointExpired,
	schema.CodeUnavailable, schema.CodeInternal}

var openAPIJSON = gosync.OnceValue(func() []byte {
	b, err := json.Marshal(openAPIDoc())
	if err != nil {
		panic(err)
	}
	return b
})

func (s *Server) openAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(openAPIJSON())
}
