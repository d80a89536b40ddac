package sync

import "fieldsync/schema"

func (w *wtx) onSheetCreate(actor schema.Actor, d schema.Doc) error {
	return schema.Errorf(schema.CodeValidation, "feedback sheets are not supported yet")
}

func (w *wtx) onSheetUpdate(actor schema.Actor, cur, next, changed schema.Doc) error {
	return schema.Errorf(schema.CodeValidation, "feedback sheets are not supported yet")
}

func (w *wtx) sheetAction(actor schema.Actor, cur schema.Doc, action string, params schema.Doc) (schema.Doc, []schema.Effect, error) {
	return nil, nil, schema.Errorf(schema.CodeValidation, "feedback sheets are not supported yet")
}
