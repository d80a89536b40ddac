package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"fieldsync/internal/testpg"
)

// TestMetrics drives real traffic through a server (logins, a phone's WebSocket sync with a
// push and a live pull, a blob upload, API requests) and reads the metrics from their own
// listener with the Prometheus parser.
func TestMetrics(t *testing.T) {
	srv, ln := serveDemo(t, Config{})
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeMetrics(mln)
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(method, path, token string, body any, headers ...string) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if b, ok := body.([]byte); ok {
			rd = bytes.NewReader(b)
		} else if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}

	// Logins: one web login refused, one accepted; a phone logs in.
	if st, _ := call("POST", "/api/v1/auth/login", "", map[string]string{"username": "coord", "password": "wrong-password"}); st != 401 {
		t.Fatalf("bad login: %d", st)
	}
	_, r := call("POST", "/api/v1/auth/login", "", map[string]string{"username": "coord", "password": DemoPassword})
	coord, _ := r["token"].(string)
	_, r = call("POST", "/mobile/v1/auth/login", "", map[string]string{"username": "tech1", "password": DemoPassword, "device_id": "metrics-phone", "device_name": "phone"})
	phone, _ := r["token"].(string)
	if coord == "" || phone == "" {
		t.Fatal("logins failed")
	}
	for _, id := range []string{"00000000-0000-0000-0000-00000000aaaa", "00000000-0000-0000-0000-00000000bbbb"} {
		call("GET", "/api/v1/tickets/"+id, coord, nil) // 404s: one route, whatever the id
	}
	call("GET", "/no/such/page/"+uuid.NewString(), "", nil)

	// A blob upload.
	img := testPNG(5)
	if st, _ := call("PATCH", "/mobile/v1/blobs/"+sha(img), phone, img, "Upload-Offset", "0", "Upload-Length", strconv.Itoa(len(img)), "Content-Type", "application/offset+octet-stream"); st != 201 {
		t.Fatalf("blob upload: %d", st)
	}

	// The phone syncs over a WebSocket: hello, a live pull, a push with one mutation applied
	// and one rejected; then the office changes a record in its scope and the change
	// arrives live.
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"fieldsync.v1"}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/mobile/v1/sync", http.Header{"Authorization": {"Bearer " + phone}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	exchange := func(send string, want string) map[string]any {
		t.Helper()
		if send != "" {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
				t.Fatal(err)
			}
		}
		for range 50 {
			var m map[string]any
			if err := conn.ReadJSON(&m); err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if m["type"] == want {
				return m
			}
		}
		t.Fatalf("no %s", want)
		return nil
	}
	exchange(`{"type":"hello","id":"h1","protocol":1,"device_id":"metrics-phone","app_version":"1","schema_version":1}`, "welcome")
	changes := exchange(`{"type":"pull","id":"p1","checkpoint":"","limit":1000,"live":true}`, "changes")
	var ticket string
	for _, c := range changes["changes"].([]any) {
		if cm := c.(map[string]any); cm["entity"] == "ticket" && ticket == "" {
			ticket, _ = cm["id"].(string)
		}
	}
	if ticket == "" {
		t.Fatal("tech1 has no ticket in the demo")
	}
	push := fmt.Sprintf(`{"type":"push","id":"m1","mutations":[
		{"mid":"%s","entity":"ticket_event","id":"%s","op":"create","base_version":0,"fields":{"ticket_id":"%s","note":"客户要报价"}},
		{"mid":"%s","entity":"ticket","id":"%s","op":"create","base_version":0,"fields":{"customer_id":"nobody"}}]}`,
		uuid.NewString(), uuid.NewString(), ticket, uuid.NewString(), uuid.NewString())
	results := exchange(push, "results")["results"].([]any)
	if results[0].(map[string]any)["status"] != "applied" || results[1].(map[string]any)["status"] != "rejected" {
		t.Fatalf("push results %v, want applied then rejected", results)
	}
	rejectedCode, _ := results[1].(map[string]any)["code"].(string)
	if st, _ := call("POST", "/api/v1/tickets/"+ticket+"/notes", coord, map[string]string{"note": "请尽快处理"}); st != 201 && st != 200 {
		t.Fatalf("office note: %d", st)
	}
	exchange("", "changes") // the live change

	// Metrics: on their own listener only.
	if st, _ := call("GET", "/metrics", "", nil); st != 404 {
		t.Errorf("GET /metrics on the API port: %d, want 404", st)
	}
	res, err := client.Get("http://" + mln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	// value returns the sum of the samples of a family whose labels include want (a
	// histogram's sample count).
	value := func(name string, want ...string) float64 {
		f := families[name]
		if f == nil {
			t.Errorf("no metric %s", name)
			return 0
		}
		sum := 0.0
	metrics:
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(want); i += 2 {
				if labels[want[i]] != want[i+1] {
					continue metrics
				}
			}
			sum += sampleValue(m)
		}
		return sum
	}
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"fieldsync_connected_devices", []string{"kind", "device"}, 1},
		{"fieldsync_sync_pushes_total", []string{"result", "ok"}, 1},
		{"fieldsync_sync_pulls_total", []string{"result", "ok"}, 1},
		{"fieldsync_sync_mutations_total", []string{"status", "applied"}, 1},
		{"fieldsync_sync_mutations_total", []string{"status", "rejected", "code", rejectedCode}, 1},
		{"fieldsync_write_group_batches", nil, 1},
		{"fieldsync_write_commit_seconds", nil, 1},
		{"fieldsync_live_fanout_seconds", nil, 1},
		{"fieldsync_blob_stored_bytes_total", nil, float64(len(img))},
		{"fieldsync_logins_failed_total", []string{"kind", "web", "reason", "bad_credentials"}, 1},
		{"fieldsync_http_requests_total", []string{"route", "/api/v1/auth/login", "method", "POST", "status", "200"}, 1},
		{"fieldsync_http_requests_total", []string{"route", "/api/v1/tickets/:id", "method", "GET", "status", "404"}, 2},
		{"fieldsync_http_requests_total", []string{"route", "unmatched", "status", "404"}, 1},
	} {
		if got := value(c.name, c.labels...); got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	if _, ok := families["fieldsync_write_queue_depth"]; !ok {
		t.Error("no fieldsync_write_queue_depth")
	}
	for _, m := range families["fieldsync_http_requests_total"].Metric {
		for _, l := range m.Label {
			if strings.Contains(l.GetValue(), "aaaa") || strings.Contains(l.GetValue(), "/no/such") {
				t.Errorf("a request path became a label: %v", m.Label)
			}
		}
	}
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// serveDemo starts a demo server with cfg on a loopback port, shut down at cleanup.
func serveDemo(t *testing.T, cfg Config) (*Server, net.Listener) {
	t.Helper()
	cfg.DataDir, cfg.Demo = t.TempDir(), true
	cfg.DB = testpg.For(t, cfg.DataDir)
	cfg.Log, cfg.Out = slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) {}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	return srv, ln
}
