package schema

import "slices"

// Schema modes for Entity.OpenAPISchema.
const (
	SchemaRecord = "record" // a record as the API answers it: every field present
	SchemaCreate = "create" // a create request's body
	SchemaPatch  = "patch"  // an edit's body (If-Match)
)

// OpenAPISchema is the OpenAPI 3.0 schema of the entity in a mode, from the same field table
// that validates writes, so the API document cannot drift from the rules: types, lengths,
// enumerations, required fields, who may write what (side), and the item's words as the
// description. omit leaves out fields a route takes from its URL.
func (e *Entity) OpenAPISchema(mode string, side Side, omit ...string) map[string]any {
	props := map[string]any{}
	required := []string{}
	example := map[string]any{}
	if mode == SchemaRecord {
		props["id"] = map[string]any{"type": "string"}
		props["version"] = map[string]any{"type": "integer", "minimum": 1}
		props["created_at"] = map[string]any{"type": "string", "format": "date-time"}
		props["updated_at"] = map[string]any{"type": "string", "format": "date-time"}
		required = append(required, "id", "version")
	}
	for i := range e.Fields {
		f := &e.Fields[i]
		if slices.Contains(omit, f.Name) {
			continue
		}
		if mode != SchemaRecord && !(f.Writers == side || f.Writers == SideBoth) {
			continue
		}
		if mode == SchemaPatch && f.CreateOnly {
			continue
		}
		p := fieldSchema(f)
		l, _ := ItemLabel(e.Name, f.Name)
		p["description"] = l.Both()
		switch {
		case mode == SchemaRecord:
			required = append(required, f.Name)
			if zeroOf(f) == nil {
				p["nullable"] = true
			}
		case mode == SchemaCreate && f.Required:
			required = append(required, f.Name)
		default:
			p["nullable"] = true // null sets the empty value
		}
		if mode == SchemaCreate && f.Required {
			if ex, ok := p["example"]; ok {
				example[f.Name] = ex
			}
		}
		props[f.Name] = p
	}
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	if mode != SchemaRecord {
		s["additionalProperties"] = false // an unknown field is refused (bad_request)
		if len(example) > 0 && (mode != SchemaCreate || len(example) == len(required)) {
			s["example"] = example
		}
	}
	return s
}

func fieldSchema(f *Field) map[string]any {
	switch f.Kind {
	case KString:
		return map[string]any{"type": "string", "maxLength": MaxString, "example": "…"}
	case KText:
		return map[string]any{"type": "string", "maxLength": MaxText, "example": "…"}
	case KInt:
		return map[string]any{"type": "integer", "minimum": 0, "maximum": 1 << 40}
	case KMoney:
		return map[string]any{"type": "integer", "minimum": 0, "maximum": 1 << 40, "example": 12800, "x-unit": "fen"}
	case KBool:
		return map[string]any{"type": "boolean"}
	case KTime:
		return map[string]any{"type": "string", "format": "date-time", "example": "2026-11-26T09:30:00Z"}
	case KDate:
		return map[string]any{"type": "string", "format": "date", "example": "2026-11-26"}
	case KEnum:
		return map[string]any{"type": "string", "enum": f.Enum, "example": f.Enum[0]}
	case KRef:
		return map[string]any{"type": "string", "maxLength": 64, "example": "0193a5e2-7c1a-7b3e-9f00-1a2b3c4d5e6f"}
	}
	return map[string]any{} // KJSON: checked by its own rule
}
