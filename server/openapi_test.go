package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// apiChecker validates real requests and answers of a running server against its own
// openapi.json, with kin-openapi.
type apiChecker struct {
	t      *testing.T
	base   string
	router routers.Router
}

func newAPIChecker(t *testing.T, base string) *apiChecker {
	t.Helper()
	res, err := http.Get(base + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &apiChecker{t: t, base: base, router: router}
}

// call sends a request, checks it and its answer against the document, and returns the
// status and decoded answer. requestOK says whether the document should accept the request.
func (a *apiChecker) call(method, path, token string, body any, requestOK bool, headers ...string) (int, map[string]any) {
	a.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, a.base+path, bytes.NewReader(raw))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	route, params, err := a.router.FindRoute(req)
	if err != nil {
		a.t.Fatalf("%s %s is not in openapi.json: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if (reqErr == nil) != requestOK {
		a.t.Errorf("%s %s %s: the document says valid=%v (%v), want %v", method, path, raw, reqErr == nil, reqErr, requestOK)
	}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(out)),
		Options: in.Options}); err != nil {
		a.t.Errorf("%s %s answered %d, not as documented: %v\n%s", method, path, res.StatusCode, err, out)
	}
	var m map[string]any
	json.Unmarshal(out, &m)
	return res.StatusCode, m
}

// TestOpenAPIMatchesTheServer: openapi.json is valid OpenAPI 3 (kin-openapi), and real
// requests and answers of the running server match it: records, lists, creations (201),
// edits with If-Match, errors. A body the document refuses (an unknown field, a missing
// required field, a value outside an enumeration) the server refuses too.
func TestOpenAPIMatchesTheServer(t *testing.T) {
	e := newEnv(t, true)
	a := newAPIChecker(t, e.start())

	st, login := a.call("POST", "/api/v1/auth/login", "", map[string]any{"username": "coord", "password": DemoPassword}, true)
	if st != 200 {
		t.Fatalf("login: %d %v", st, login)
	}
	tok := login["token"].(string)
	a.call("GET", "/api/v1/me", tok, nil, true)
	a.call("GET", "/api/v1/users", tok, nil, true)
	a.call("GET", "/api/v1/devices", tok, nil, true)
	a.call("GET", "/api/v1/customers", tok, nil, true)

	st, cust := a.call("POST", "/api/v1/customers", tok, map[string]any{"name": "宁波港机械有限公司", "phone": "0574-8888-0000", "code": "NB-01"}, true)
	if st != 201 {
		t.Fatalf("create customer: %d %v", st, cust)
	}
	cid := str(cust, "id")
	a.call("GET", "/api/v1/customers/"+cid, tok, nil, true)
	a.call("PATCH", "/api/v1/customers/"+cid, tok, map[string]any{"notes": "大客户 key account"}, true, "If-Match", "1")
	_, site := a.call("POST", "/api/v1/customers/"+cid+"/sites", tok, map[string]any{"name": "北仑码头", "address": "宁波市北仑区",
		"contacts": []map[string]string{{"name": "李工", "phone": "139-0000-0000"}}}, true)
	a.call("GET", "/api/v1/customers/"+cid+"/sites", tok, nil, true)
	_, asset := a.call("POST", "/api/v1/assets", tok, map[string]any{"customer_id": cid, "site_id": str(site, "id"), "model": "QC-9",
		"serial": "NB-QC9-OPENAPI", "warranty_until": "2030-01-31"}, true)
	a.call("GET", "/api/v1/assets?serial=NB-QC9-OPENAPI", tok, nil, true)
	st, tk := a.call("POST", "/api/v1/tickets", tok, map[string]any{"customer_id": cid, "site_id": str(site, "id"), "asset_id": str(asset, "id"),
		"fault_symptoms": "吊具无法锁定 spreader will not lock", "urgency": "high", "service_mode": "phone"}, true)
	if st != 201 {
		t.Fatalf("create ticket: %d %v", st, tk)
	}
	tid := str(tk, "id")
	a.call("GET", "/api/v1/tickets?status=registered", tok, nil, true)
	a.call("GET", "/api/v1/tickets/"+tid, tok, nil, true)
	a.call("POST", "/api/v1/tickets/"+tid+"/notes", tok, map[string]any{"note": "客户下午在 customer in this afternoon"}, true)
	a.call("POST", "/api/v1/tickets/"+tid+"/complaints", tok, map[string]any{"description": "响应慢 slow response"}, true)
	a.call("GET", "/api/v1/complaints", tok, nil, true)

	// What the document refuses, the server refuses, with a documented error.
	for _, bad := range []struct {
		method, path string
		body         map[string]any
		headers      []string
	}{
		{"POST", "/api/v1/customers", map[string]any{"phone": "123"}, nil},                                             // no name
		{"POST", "/api/v1/customers", map[string]any{"name": "x", "colour": "blue"}, nil},                              // unknown field
		{"POST", "/api/v1/tickets", map[string]any{"customer_id": cid, "fault_symptoms": "x", "urgency": "soon"}, nil}, // not an urgency
		{"PATCH", "/api/v1/tickets/" + tid, map[string]any{"status": "closed"}, []string{"If-Match", "1"}},             // the server sets it
		{"POST", "/api/v1/assets", map[string]any{"customer_id": cid, "model": "m", "serial": "s", "install_date": "yesterday"}, nil},
	} {
		if st, _ := a.call(bad.method, bad.path, tok, bad.body, false, bad.headers...); st < 400 || st >= 500 {
			t.Errorf("%s %s %v: the server answered %d", bad.method, bad.path, bad.body, st)
		}
	}
	// An edit without If-Match: the document requires it, and so does the server.
	if st, _ := a.call("PATCH", "/api/v1/customers/"+cid, tok, map[string]any{"notes": "x"}, false); st != 400 {
		t.Errorf("an edit without If-Match: %d", st)
	}
}

// TestOpenAPISchemasNameRealRoutes: every route given schemas is a documented route, so the
// table of schemas cannot describe a route that is gone.
func TestOpenAPISchemasNameRealRoutes(t *testing.T) {
	routes := map[string]bool{}
	for _, r := range apiDoc {
		routes[r.Method+" "+r.Path] = true
	}
	for k := range apiSchemas {
		if !routes[k] {
			t.Errorf("apiSchemas describes %s, which is not a route", k)
		}
	}
}
