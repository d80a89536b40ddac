package server

import (
	"io/fs"
	"os"
	"strings"
	"testing"

	"fieldsync/schema"
)

// TestOneSetOfUrgencyWords: the urgency words come from one table (schema.UrgencyLabels):
// the console and the field app read them from their meta.json and hold no copy of their
// own, the printed form and the alert texts use them, so 紧急 means the same on screen, on
// paper and in a message.
func TestOneSetOfUrgencyWords(t *testing.T) {
	e := newEnv(t, true)
	for _, path := range []string{"/console/meta.json", "/app/meta.json"} {
		meta := e.must(e.do("GET", path, "", nil), 200).Body
		labels, _ := meta["labels"].(map[string]any)
		urg, _ := labels["urgency"].(map[string]any)
		for code, l := range schema.UrgencyLabels {
			got, _ := urg[code].(map[string]any)
			if got["zh"] != l.Zh || got["en"] != l.En {
				t.Errorf("%s: urgency %s is %v, want %v", path, code, got, l)
			}
		}
	}
	// No script keeps its own copy of the words.
	scan := func(name string, fsys fs.FS) {
		fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
				return err
			}
			b, _ := fs.ReadFile(fsys, p)
			for _, l := range schema.UrgencyLabels {
				if strings.Contains(string(b), "'"+l.Zh+"'") || strings.Contains(string(b), "'"+l.Zh+" "+l.En+"'") {
					t.Errorf("%s/%s holds its own urgency word %q", name, p, l.Zh)
				}
			}
			return nil
		})
	}
	scan("server/console", os.DirFS("console"))
	scan("mobile-api/app", os.DirFS("../mobile-api/app"))

	// The printed form of a critical ticket says 特急 Critical, as the screen does.
	tok := e.login("coord", DemoPassword)
	cust := str(e.must(e.do("GET", "/api/v1/customers", tok, nil), 200).Body["items"].([]any)[0].(map[string]any), "id")
	tk := e.must(e.do("POST", "/api/v1/tickets", tok, map[string]any{"customer_id": cust, "fault_symptoms": "停机 down", "urgency": "critical", "service_mode": "phone"}), 201).Body
	pdf := e.must(e.do("GET", "/api/v1/tickets/"+str(tk, "id")+"/form.pdf", tok, nil), 200).Raw
	want := schema.UrgencyLabels["critical"]
	if text := squash(pdfText(t, pdf)); !strings.Contains(text, want.Zh) || !strings.Contains(text, want.En) {
		t.Errorf("the form of a critical ticket does not say %v:\n%s", want, text)
	}
	// The dispatch alert too.
	msg := schema.AlertText(schema.AlertFacts{Kind: schema.AlertDispatched, Number: "SR-1", Urgency: "high", Customer: "某公司"}, "zh", nil)
	if !strings.Contains(msg, schema.UrgencyLabels["high"].Zh) {
		t.Errorf("the dispatch alert for a high ticket: %q", msg)
	}
}
