package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"fieldsync/internal/testpg"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key into dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fieldsync test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS: with a certificate and key the server speaks HTTPS, and a phone syncs over
// wss; plain HTTP on the same port is not served. A missing or mismatched pair is refused
// at start, naming the file.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	_, ln := serveDemo(t, Config{TLSCert: certFile, TLSKey: keyFile})
	addr := ln.Addr().String()
	tlsConf := &tls.Config{RootCAs: pool}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}

	res, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS request: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("GET /healthz over HTTPS: %d, TLS %v", res.StatusCode, res.TLS != nil)
	}
	body := `{"username":"tech1","password":"` + DemoPassword + `","device_id":"tls-phone","device_name":"TLS phone"}`
	res, err = client.Post("https://"+addr+"/mobile/v1/auth/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	if res.StatusCode != 200 || login.Token == "" {
		t.Fatalf("device login over HTTPS: %d", res.StatusCode)
	}

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"fieldsync.v1"}, TLSClientConfig: tlsConf}
	conn, _, err := d.Dial("wss://"+addr+"/mobile/v1/sync", http.Header{"Authorization": {"Bearer " + login.Token}})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, step := range []struct{ send, want string }{
		{`{"type":"hello","id":"h1","protocol":1,"device_id":"tls-phone","app_version":"1","schema_version":1}`, "welcome"},
		{`{"type":"pull","id":"p1","checkpoint":"","limit":1000}`, "changes"},
	} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(step.send)); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for %s: %v", step.want, err)
		}
		if m["type"] != step.want {
			t.Fatalf("got %v, want %s", m, step.want)
		}
		if step.want == "changes" && len(m["changes"].([]any)) == 0 {
			t.Errorf("the pull over wss brought nothing: %v", m)
		}
	}

	// Plain HTTP on the TLS port gets no answer from the API.
	if res, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Errorf("plain HTTP on the TLS port was served")
		}
	}

	// Configuration mistakes stop the start with a message naming what is wrong.
	_, otherKey, _ := selfSigned(t, t.TempDir())
	for _, tc := range []struct {
		cert, key, want string
	}{
		{certFile, "", "--tls-key"},
		{"", keyFile, "--tls-cert"},
		{filepath.Join(t.TempDir(), "missing.pem"), keyFile, "missing.pem"},
		{certFile, otherKey, "key"},
	} {
		dir := t.TempDir()
		_, err := New(context.Background(), Config{DataDir: dir, DB: testpg.For(t, dir), TLSCert: tc.cert, TLSKey: tc.key, AdminPassword: "admin-pass-1",
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: func(string) {}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cert %q key %q: %v, want an error naming %s", tc.cert, tc.key, err, tc.want)
		}
	}
}
