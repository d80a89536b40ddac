package schema

import (
	"errors"
	"fmt"
)

// Error codes. Every error a client sees carries one of these; the HTTP status for each is
// decided in exactly one place (the server's error handler), and the sync protocol sends the
// code as is in `error` frames and `rejected` results.
const (
	CodeBadRequest       = "bad_request"        // malformed JSON, wrong types, unknown fields
	CodeValidation       = "validation"         // a value breaks a rule; Field names it
	CodeUnauthenticated  = "unauthenticated"    // no, wrong, expired or revoked credentials
	CodeForbidden        = "forbidden"          // the actor's role may not do this
	CodeOutOfScope       = "out_of_scope"       // the record is not in the device's scope
	CodeNotFound         = "not_found"          // no such record or route
	CodeMethodNotAllowed = "method_not_allowed" // route exists, method does not
	CodeConflict         = "conflict"           // stale version (base_version), or an id taken
	// CodePreconditionFailed: an API edit's If-Match names a version the record has moved
	// past; the answer names the fields changed meanwhile and carries the current record.
	CodePreconditionFailed = "precondition_failed"
	CodeInvalidTransition  = "invalid_transition" // workflow step not allowed in this state
	CodeSealed             = "sealed"             // the feedback sheet is signed and sealed
	CodeMissingBlob        = "missing_blob"       // a referenced blob is not held whole yet
	CodeDependsOnRejected  = "depends_on_rejected"
	CodeTooLarge           = "too_large"          // body, frame, blob or batch over its limit
	CodeUnsupportedMedia   = "unsupported_media"  // blob content of a type not accepted
	CodeHashMismatch       = "hash_mismatch"      // blob content does not hash to its name
	CodeDeviceSignature    = "device_signature"   // a sheet's device signature is missing or wrong
	CodeRateLimited        = "rate_limited"       // too many attempts
	CodeCheckpointExpired  = "checkpoint_expired" // pull checkpoint older than tombstones kept
	CodeUnavailable        = "unavailable"        // shutting down, database not answering
	CodeInternal           = "internal"           // a bug or an I/O failure; details only in the log
)

// Error is the one error type of fieldsync: a code, a message a person can read, and the
// field at fault where there is one. Record carries the current server state where that helps
// the caller (a stale edit, an invalid transition).
type Error struct {
	Code    string
	Message string
	Field   string
	Record  any
	// Extra holds further members of the error's JSON answer, e.g. the fields a stale edit
	// collides on.
	Extra map[string]any
	// Entity is the record type Field belongs to, where known: it picks the item's own
	// words (a customer's phone is 客户电话 customer phone).
	Entity string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError builds a validation-style *Error naming the field at fault.
func FieldError(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, else CodeInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError returns err as an *Error if it is (or wraps) one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
