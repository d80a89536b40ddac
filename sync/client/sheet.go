package client

import (
	"fmt"

	"fieldsync/schema"
)

// SheetCompleteness tells whether feedback sheet sheetID is complete as the device sees it
// now, its pending edits included, and which required items are missing (named by field,
// as the server names them), so the app can tell the technician before the customer
// leaves. It runs the server's own rule, schema.SheetCompleteness, with the required-items
// setting of the sheet's service mode the device holds (the schema's default when the device holds none yet). The
// server decides again when it applies the sheet; a setting changed on the server reaches
// the device with the next pull.
func (c *Client) SheetCompleteness(sheetID string) (complete bool, missing []string, err error) {
	r, ok, err := c.Record(schema.EntSheet, sheetID)
	if err != nil {
		return false, nil, err
	}
	if !ok {
		return false, nil, fmt.Errorf("client: feedback sheet %q is not on this device", sheetID)
	}
	sheet, err := schema.DecodeDoc(r.Data)
	if err != nil {
		return false, nil, fmt.Errorf("client: feedback sheet %s: %w", sheetID, err)
	}
	required, err := c.sheetRequired(schema.SheetRequiredSetting(sheet.Str("service_mode")))
	if err != nil {
		return false, nil, err
	}
	complete, missing = schema.SheetCompleteness(sheet, required)
	return complete, missing, nil
}

// sheetRequired returns the required-items setting key (one per service mode) from the
// setting record the device holds, or the schema's default.
func (c *Client) sheetRequired(key string) ([]string, error) {
	stored := map[string]any{}
	r, ok, err := c.Record(schema.EntSetting, key)
	if err != nil {
		return nil, err
	}
	if ok {
		d, err := schema.DecodeDoc(r.Data)
		if err != nil {
			return nil, fmt.Errorf("client: setting %s: %w", key, err)
		}
		if v, ok := d["value"]; ok && v != nil {
			stored[key] = v
		}
	}
	return schema.NewSettings(stored).List(key), nil
}
