package schema

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// completenessVectors are the cases in testdata/sheet-completeness.json, shared with the field
// app's JavaScript rule (mobile-api/app/completeness.js), which e2e checks in chromium.
type completenessVectors struct {
	Cases []struct {
		Name     string          `json:"name"`
		Required []string        `json:"required"`
		Sheet    json.RawMessage `json:"sheet"`
		Missing  []string        `json:"missing"`
	} `json:"cases"`
}

func TestSheetCompletenessVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/sheet-completeness.json")
	if err != nil {
		t.Fatal(err)
	}
	var v completenessVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range v.Cases {
		sheet, err := DecodeDoc(c.Sheet)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		complete, missing := SheetCompleteness(sheet, c.Required)
		if !slices.Equal(missing, c.Missing) || complete != (len(c.Missing) == 0) {
			t.Errorf("%s: complete %v, missing %v; want missing %v", c.Name, complete, missing, c.Missing)
		}
	}
}
