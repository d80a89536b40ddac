package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
)

// startErr builds a server from cfg and returns New's error, shutting down one that starts.
func startErr(t *testing.T, cfg Config) error {
	t.Helper()
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Out = func(string) {}
	cfg.AdminPassword = "admin-pass-1"
	srv, err := New(context.Background(), cfg)
	if err == nil {
		srv.Shutdown(context.Background())
	}
	return err
}

// newSealKey makes a seal key in a folder of its own and returns it with its file's path.
func newSealKey(t *testing.T) (*schema.SealKey, string) {
	t.Helper()
	dir := t.TempDir()
	k, err := schema.LoadSealKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k, filepath.Join(dir, schema.SealKeyFile)
}

// TestSealKeyGivenByFileOrEnvironment checks the three ways to give an instance its seal
// key (a file, the file's text, the base64 line inside it): the server seals with that key and
// makes none of its own; and that a missing file, text that is not a key, or a key given twice
// is refused with a message naming what is wrong (never quoting the text).
func TestSealKeyGivenByFileOrEnvironment(t *testing.T) {
	k, file := newSealKey(t)
	pemText, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Split(strings.TrimSpace(string(pemText)), "\n")[1]
	for name, opt := range map[string]func(*Config){
		"file":        func(c *Config) { c.SealKeyFile = file },
		"text":        func(c *Config) { c.SealKey = string(pemText) },
		"base64 line": func(c *Config) { c.SealKey = line },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, false, opt)
			if got := e.srv.Sealer.PublicHex(); got != k.PublicHex() {
				t.Errorf("the server seals with key %s, want the given %s", got, k.PublicHex())
			}
			if _, err := os.Stat(filepath.Join(e.dir, schema.SealKeyFile)); !os.IsNotExist(err) {
				t.Errorf("a key was given, yet %s was made (%v)", schema.SealKeyFile, err)
			}
		})
	}

	for _, tt := range []struct {
		name       string
		file, text string
		want       string
	}{
		{"missing file", filepath.Join(t.TempDir(), "no-such.key"), "", "no-such.key"},
		{"not a key", "", "secret-looking-words", "FIELDSYNC_SEAL_KEY"},
		{"short key", "", "c2hvcnQ=", "FIELDSYNC_SEAL_KEY"},
		{"given twice", file, line, "twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := startErr(t, Config{DataDir: dir, DB: testpg.For(t, dir), SealKeyFile: tt.file, SealKey: tt.text})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error naming %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-looking") {
				t.Errorf("the error quotes the key text: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, schema.SealKeyFile)); !os.IsNotExist(err) {
				t.Errorf("a refused start made %s (%v)", schema.SealKeyFile, err)
			}
		})
	}
}

// TestSealKeyOneForAllInstances checks that instances sharing a PostgreSQL database seal
// with one key: once the database holds sheets sealed by a key, an instance with another
// key, or with none (which would make its own), is refused and says which key the database
// wants; an instance given the same key starts and verifies the sheets. A database holding
// sealed sheets but no registered key (copied from SQLite) takes only the key that sealed
// them. The database keeps the public key only.
func TestSealKeyOneForAllInstances(t *testing.T) {
	if !testpg.On() {
		t.Skip("on SQLite one instance owns the data folder and its seal.key")
	}
	first := newSheetEnv(t)
	sheet := first.signedSheet(first.t1, first.fullSheet(first.ticket(first.t1ID, schema.StCompleted, false)))
	id, fp := str(sheet, "id"), str(sheet, "fingerprint")
	url := first.srv.cfg.DB
	firstKey := filepath.Join(first.dir, schema.SealKeyFile)
	regID := schema.KeyID(first.srv.Sealer.PublicHex())

	var stored string
	if err := first.srv.DB.R.QueryRow(`SELECT public_key FROM seal_key`).Scan(&stored); err != nil || stored != first.srv.Sealer.PublicHex() {
		t.Fatalf("registered key %q (%v), want the first instance's public key", stored, err)
	}

	other, otherFile := newSealKey(t)
	t.Run("another key", func(t *testing.T) {
		err := startErr(t, Config{DataDir: t.TempDir(), DB: url, SealKeyFile: otherFile})
		if err == nil || !strings.Contains(err.Error(), regID) || !strings.Contains(err.Error(), schema.KeyID(other.PublicHex())) ||
			!strings.Contains(err.Error(), "sealed 1 sheets") {
			t.Fatalf("New with another key = %v, want a refusal naming both keys and the sealed sheet", err)
		}
	})
	t.Run("no key", func(t *testing.T) {
		dir := t.TempDir()
		err := startErr(t, Config{DataDir: dir, DB: url})
		if err == nil || !strings.Contains(err.Error(), regID) || !strings.Contains(err.Error(), "--seal-key") {
			t.Fatalf("New without a key = %v, want a refusal asking for the database's key", err)
		}
		if _, err := os.Stat(filepath.Join(dir, schema.SealKeyFile)); !os.IsNotExist(err) {
			t.Errorf("the refused instance made a key of its own (%v)", err)
		}
	})
	t.Run("the same key", func(t *testing.T) {
		pemText, err := os.ReadFile(firstKey)
		if err != nil {
			t.Fatal(err)
		}
		second := newEnv(t, false, func(c *Config) { c.DB = url; c.SealKey = string(pemText) })
		v, err := second.srv.Engine.VerifySheet(context.Background(), id, fp)
		if err != nil || !v.Valid {
			t.Fatalf("the sheet verified on the second instance: %+v %v", v, err)
		}
	})
	t.Run("sealed sheets but no registered key", func(t *testing.T) {
		if _, err := first.srv.DB.W.Exec(`DELETE FROM seal_key`); err != nil {
			t.Fatal(err)
		}
		if err := startErr(t, Config{DataDir: t.TempDir(), DB: url, SealKeyFile: otherFile}); err == nil || !strings.Contains(err.Error(), "did not seal") {
			t.Fatalf("New with a key that did not seal the sheets = %v, want a refusal", err)
		}
		if err := startErr(t, Config{DataDir: t.TempDir(), DB: url, SealKeyFile: firstKey}); err != nil {
			t.Fatalf("New with the key that sealed them: %v", err)
		}
		if err := first.srv.DB.R.QueryRow(`SELECT public_key FROM seal_key`).Scan(&stored); err != nil || stored != first.srv.Sealer.PublicHex() {
			t.Fatalf("registered key %q (%v), want the sealing key's", stored, err)
		}
	})
}
