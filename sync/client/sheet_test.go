package client

import (
	"fmt"
	"strings"
	"testing"

	syncer "fieldsync/sync"
)

func TestSheetCompleteness(t *testing.T) {
	sig, stamp := strings.Repeat("a", 64), strings.Repeat("b", 64)
	check := func(t *testing.T, c *Client, id, want string) {
		t.Helper()
		complete, missing, err := c.SheetCompleteness(id)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(complete, missing); got != want {
			t.Errorf("SheetCompleteness(%s) = %s, want %s", id, got, want)
		}
	}

	t.Run("a sheet made offline, completed by a pending edit", func(t *testing.T) {
		c := openTest(t, "")
		id := NewID()
		if _, err := c.Mutate("feedback_sheet", id, "create", 0, map[string]any{"ticket_id": "t1", "fault_symptoms": "报警灯常亮",
			"inspection_record": "电源模块老化", "handling_result": "  ", "rating": 0, "signature_blob": sig}, ""); err != nil {
			t.Fatal(err)
		}
		// No sheet_required record on the device yet: the schema's default applies.
		check(t, c, id, "false [handling_result rating signer_name stamp_blob]")
		if _, err := c.Mutate("feedback_sheet", id, "update", 0, map[string]any{"handling_result": "更换电源模块", "rating": 5,
			"signer_name": "王建国", "stamp_blob": stamp}, ""); err != nil {
			t.Fatal(err)
		}
		check(t, c, id, "true []")
	})

	t.Run("the setting the device holds decides", func(t *testing.T) {
		c := openTest(t, "")
		full := `{"id":"s1","ticket_id":"t1","fault_symptoms":"x","inspection_record":"y","handling_result":"z","rating":4,"signer_name":"王","signature_blob":"` + sig + `","stamp_blob":"` + stamp + `"}`
		noStamp := `{"id":"s2","ticket_id":"t1","fault_symptoms":"x","inspection_record":"y","handling_result":"z","rating":4,"signer_name":"王","signature_blob":"` + sig + `","stamp_blob":""}`
		if _, err := c.st.applyChanges([]syncer.Change{upsert("feedback_sheet", "s1", 1, full), upsert("feedback_sheet", "s2", 1, noStamp)}, ptr("2")); err != nil {
			t.Fatal(err)
		}
		check(t, c, "s1", "true []")
		check(t, c, "s2", "false [stamp_blob]")
		// The office requires the technician's signature and no longer the stamp.
		setting := `{"id":"sheet_required","key":"sheet_required","value":["signer_name","signature_blob","technician_signature_blob"]}`
		if _, err := c.st.applyChanges([]syncer.Change{upsert("setting", "sheet_required", 1, setting)}, ptr("3")); err != nil {
			t.Fatal(err)
		}
		check(t, c, "s1", "false [technician_signature_blob]")
		check(t, c, "s2", "false [technician_signature_blob]")
		if _, err := c.Mutate("feedback_sheet", "s2", "update", 1, map[string]any{"technician_signature_blob": sig}, ""); err != nil {
			t.Fatal(err)
		}
		check(t, c, "s2", "true []")
	})

	t.Run("a phone service's sheet follows the phone list", func(t *testing.T) {
		c := openTest(t, "")
		noStamp := `{"id":"s3","ticket_id":"t1","service_mode":"phone","fault_symptoms":"x","inspection_record":"y","handling_result":"z","rating":4,"signer_name":"王","signature_blob":"` + sig + `","stamp_blob":""}`
		phone := `{"id":"sheet_required_phone","key":"sheet_required_phone","value":["signer_name","signature_blob"]}`
		if _, err := c.st.applyChanges([]syncer.Change{upsert("feedback_sheet", "s3", 1, noStamp)}, ptr("2")); err != nil {
			t.Fatal(err)
		}
		check(t, c, "s3", "false [stamp_blob]")
		if _, err := c.st.applyChanges([]syncer.Change{upsert("setting", "sheet_required_phone", 1, phone)}, ptr("3")); err != nil {
			t.Fatal(err)
		}
		check(t, c, "s3", "true []")
	})

	t.Run("a sheet the device does not hold", func(t *testing.T) {
		c := openTest(t, "")
		if _, _, err := c.SheetCompleteness("nope"); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("unknown sheet: err %v", err)
		}
	})
}
