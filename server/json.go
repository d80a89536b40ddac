package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"fieldsync/schema"
)

// decodeBody decodes a JSON request body into v strictly: malformed JSON, wrong types and
// unknown fields are each refused with an error naming what was wrong.
func decodeBody(c *fiber.Ctx, v any) error {
	return DecodeStrict(c.Body(), v)
}

// DecodeStrict decodes one JSON value into v, refusing unknown fields, wrong types and
// trailing data.
func DecodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return schema.Errorf(schema.CodeBadRequest, "the request body is empty; send a JSON object")
	}
	if err := schema.CheckJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return schema.Errorf(schema.CodeBadRequest, "malformed JSON: data after the first value")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return schema.Errorf(schema.CodeBadRequest, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return schema.Errorf(schema.CodeBadRequest, "the body must be a JSON %s, not %s", goType(typ.Type.Kind().String()), typ.Value)
		}
		return schema.FieldError(schema.CodeBadRequest, field, "%s must be %s, not %s", field, goType(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return schema.Errorf(schema.CodeBadRequest, "malformed JSON: the body ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return schema.FieldError(schema.CodeBadRequest, name, "unknown field %q", name)
	}
	return schema.Errorf(schema.CodeBadRequest, "malformed JSON: %v", err)
}

func goType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "map", "struct":
		return "an object"
	case "slice":
		return "a list"
	}
	return fmt.Sprintf("a %s", kind)
}

// bodyFields decodes a JSON object into raw fields for the write path, which checks each.
func bodyFields(c *fiber.Ctx) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := DecodeStrict(c.Body(), &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, schema.Errorf(schema.CodeBadRequest, "the body must be a JSON object")
	}
	return m, nil
}
