package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Feedback sheet statuses. A sheet is filled as a draft, sealed by sign, then received or
// returned by a coordinator; a correction voids the sheet it supersedes.
const (
	SheetDraft    = "draft"
	SheetSigned   = "signed"
	SheetReceived = "received"
	SheetReturned = "returned"
	SheetVoid     = "void"
)

// SheetStatuses lists every sheet status.
var SheetStatuses = []string{SheetDraft, SheetSigned, SheetReceived, SheetReturned, SheetVoid}

// Sheet actions: sign is taken by the technician's device; the others by a coordinator.
const (
	SheetSign            = "sign"
	SheetReceive         = "receive"
	SheetReturn          = "return"
	SheetAcceptException = "accept_exception"
)

// SheetActions lists the actions a client may ask of a sheet.
var SheetActions = []string{SheetSign, SheetReceive, SheetReturn, SheetAcceptException}

// Codes used only by feedback sheets, beside the general ones in errors.go.
const (
	// CodeTicketCancelled: a sheet is created, edited or signed on a ticket that was
	// cancelled; there is no service to report.
	CodeTicketCancelled = "ticket_cancelled"
	// CodeAlreadySigned: sign on a sheet that is already sealed.
	CodeAlreadySigned = "already_signed"
)

// SheetBlobFields are the sheet's image fields, each the SHA-256 (hex) of a blob.
var SheetBlobFields = []string{"signature_blob", "stamp_blob", "technician_signature_blob"}

// SheetSealedFields are the fields a seal covers, in the order docs/feedback-sheets.md lists
// them. Workflow fields written after signing (status, receipt by the coordinator, return,
// exception, void) are not sealed: they change, the sealed content never does.
var SheetSealedFields = []string{
	"id", "number", "ticket_id", "ticket_number", "customer_name", "technician_id", "technician_name",
	"service_mode", "arrived_at", "departed_at", "fault_symptoms", "inspection_record", "handling_result",
	"parts", "labour_fen", "parts_fen", "shipping_fen", "rating", "rating_comment", "signer_name",
	"signature_blob", "stamp_blob", "technician_signature_blob", "absent_reason", "location",
	"signed_at", "received_at", "complete", "missing", "supersedes_id",
	"chain_index", "prev_sheet_id", "prev_fingerprint",
}

// Sheet origins: written and signed on the technician's device, or entered by a coordinator
// from the signed and stamped paper form.
const (
	OriginDevice = "device"
	OriginPaper  = "paper"
)

// SheetOrigins lists every origin.
var SheetOrigins = []string{OriginDevice, OriginPaper}

// SheetPaperSealed are the fields a paper sheet adds to what its seal covers (fingerprint
// format 3): where it came from, who entered it, and what was ticked as present on the paper.
var SheetPaperSealed = []string{"origin", "entered_by", "entered_by_name", "signature_present", "stamp_present", "technician_signature_present"}

// MaxScanPages bounds the pages of a paper sheet's scan.
const MaxScanPages = 10

// PaperPresence maps the image fields completeness checks to the paper sheet's ticks: on
// paper, the customer's signature and stamp are on the scanned form, not separate images.
var PaperPresence = map[string]string{"signature_blob": "signature_present", "stamp_blob": "stamp_present", "technician_signature_blob": "technician_signature_present"}

// PaperView returns what completeness is judged on for a paper sheet: the sheet with each
// image item standing for its tick. A device sheet is returned as it is.
func PaperView(sheet Doc) Doc {
	if sheet.Str("origin") != OriginPaper {
		return sheet
	}
	v := sheet.Clone()
	for img, tick := range PaperPresence {
		v[img] = sheet.Bool(tick)
	}
	return v
}

// ScanKey names the i-th scan page in the image sums SheetCanonical takes.
func ScanKey(i int) string { return fmt.Sprintf("scan_blobs/%d", i) }

// checkScans accepts a list of 1 to MaxScanPages distinct blob names (SHA-256, hex).
func checkScans(v any) error {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return fmt.Errorf("must be a list of the scan's pages (SHA-256 of each uploaded file), at least one")
	}
	if len(list) > MaxScanPages {
		return fmt.Errorf("has %d pages; at most %d", len(list), MaxScanPages)
	}
	seen := map[string]bool{}
	for i, x := range list {
		s, _ := x.(string)
		if !ValidBlobSum(s) {
			return fmt.Errorf("page %d is not a SHA-256 (64 lower-case hex digits)", i+1)
		}
		if seen[s] {
			return fmt.Errorf("page %d repeats an earlier page", i+1)
		}
		seen[s] = true
	}
	return nil
}

// SheetFormat is the version of the canonical form fingerprints are computed over.
const SheetFormat = 1

func init() {
	tech := []string{RoleTechnician}
	// The content is written by the technician on the phone, or typed by a coordinator from
	// a paper sheet (origin paper, sealed at entry): both sides may set it on create; only
	// the technician edits a draft.
	f := func(name string, kind Kind) Field {
		return Field{Name: name, Kind: kind, Writers: SideBoth, Owner: SideField}
	}
	paper := func(name string, kind Kind, check func(any) error) Field {
		return Field{Name: name, Kind: kind, Writers: SideOffice, CreateOnly: true, Owner: SideOffice, Check: check}
	}
	register(&Entity{Name: EntSheet, CreateRoles: []string{RoleTechnician, RoleCoordinator, RoleAdmin}, UpdateRoles: tech, Fields: []Field{
		{Name: "ticket_id", Kind: KRef, Ref: EntTicket, Required: true, Writers: SideBoth, CreateOnly: true, Owner: SideField},
		{Name: "supersedes_id", Kind: KRef, Ref: EntSheet, Writers: SideField, CreateOnly: true, Owner: SideField},
		{Name: "service_mode", Kind: KEnum, Enum: ServiceModes, Writers: SideBoth, Owner: SideField},
		f("arrived_at", KTime),
		f("departed_at", KTime),
		f("fault_symptoms", KText),
		f("inspection_record", KText),
		f("handling_result", KText),
		{Name: "parts", Kind: KJSON, Writers: SideBoth, Owner: SideField, Check: checkParts},
		f("labour_fen", KMoney),
		f("parts_fen", KMoney),
		f("shipping_fen", KMoney),
		{Name: "rating", Kind: KJSON, Writers: SideBoth, Owner: SideField, Check: checkRating},
		f("rating_comment", KText),
		f("signer_name", KString),
		f("signature_blob", KString),
		f("stamp_blob", KString),
		f("technician_signature_blob", KString),
		f("absent_reason", KText),
		f("location", KString),
		// A paper sheet (docs/feedback-sheets.md, "Paper sheets"): the scan's pages, and what
		// the coordinator saw on the paper.
		paper("scan_blobs", KJSON, checkScans),
		paper("signature_present", KBool, nil),
		paper("stamp_present", KBool, nil),
		paper("technician_signature_present", KBool, nil),
		// Set by the server: "paper" when the office entered the sheet, else the device's.
		{Name: "origin", Kind: KEnum, Enum: SheetOrigins},
		{Name: "entered_by", Kind: KRef, Ref: EntUser},
		{Name: "entered_by_name", Kind: KString},
		// Set by the server.
		{Name: "number", Kind: KString},
		{Name: "technician_id", Kind: KRef, Ref: EntUser},
		{Name: "ticket_number", Kind: KString},
		{Name: "customer_name", Kind: KString},
		{Name: "technician_name", Kind: KString},
		{Name: "status", Kind: KEnum, Enum: SheetStatuses},
		{Name: "complete", Kind: KBool},
		{Name: "missing", Kind: KJSON},
		{Name: "signed_at", Kind: KTime},   // the device's time of signing
		{Name: "received_at", Kind: KTime}, // the server's time of receipt of the signed sheet
		{Name: "fingerprint", Kind: KString},
		{Name: "seal", Kind: KString},
		{Name: "chain_index", Kind: KInt},
		{Name: "prev_sheet_id", Kind: KRef, Ref: EntSheet},
		{Name: "prev_fingerprint", Kind: KString},
		// The device's signature (schema/devicesig.go), when the device registered a key.
		{Name: "device_fingerprint", Kind: KString},
		{Name: "device_time", Kind: KTime},
		{Name: "device_prev_signature", Kind: KString},
		{Name: "device_signature", Kind: KString},
		{Name: "device_key", Kind: KString},
		{Name: "device_chain_gap", Kind: KBool},
		// The device clock minus the server's, as last reported before the sign (not sealed).
		{Name: "device_clock_offset_ms", Kind: KInt},
		{Name: "superseded_by", Kind: KRef, Ref: EntSheet},
		{Name: "voided_at", Kind: KTime},
		{Name: "coordinator_received_at", Kind: KTime},
		{Name: "coordinator_received_by", Kind: KRef, Ref: EntUser},
		{Name: "returned_reason", Kind: KText},
		{Name: "returned_at", Kind: KTime},
		{Name: "returned_by", Kind: KRef, Ref: EntUser},
		{Name: "exception_accepted", Kind: KBool},
		{Name: "exception_note", Kind: KText},
		{Name: "exception_by", Kind: KRef, Ref: EntUser},
		{Name: "exception_at", Kind: KTime},
	}})
}

// checkRating accepts a whole number from 1 to 5 (null, decoded before this check, means not
// rated yet).
func checkRating(v any) error {
	n, ok := wholeNumber(v)
	if !ok {
		return fmt.Errorf("must be a whole number from 1 to 5")
	}
	if n < 1 || n > 5 {
		return fmt.Errorf("%d is outside 1–5", n)
	}
	return nil
}

func wholeNumber(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	return i, err == nil
}

// checkParts accepts a list of {item, quantity, serial_removed, serial_fitted}: item a
// non-empty string, quantity a whole number of at least 1, serials optional strings.
func checkParts(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("must be a list of {item, quantity, serial_removed, serial_fitted}")
	}
	if len(list) > 100 {
		return fmt.Errorf("%d parts; at most 100", len(list))
	}
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return fmt.Errorf("part %d must be an object {item, quantity, serial_removed, serial_fitted}", i)
		}
		for k, val := range m {
			switch k {
			case "item", "serial_removed", "serial_fitted":
				s, ok := val.(string)
				if !ok {
					return fmt.Errorf("part %d: %s must be a string", i, k)
				}
				if utf8.RuneCountInString(s) > MaxString {
					return fmt.Errorf("part %d: %s is longer than %d characters", i, k, MaxString)
				}
				if _, r, bad := controlChar(s, false); bad {
					return fmt.Errorf("part %d: %s has the control character U+%04X", i, k, r)
				}
			case "quantity":
				n, ok := wholeNumber(val)
				if !ok || n < 1 || n > 1_000_000 {
					return fmt.Errorf("part %d: quantity must be a whole number of at least 1", i)
				}
			default:
				return fmt.Errorf("part %d has unknown field %q (allowed: item, quantity, serial_removed, serial_fitted)", i, k)
			}
		}
		if s, _ := m["item"].(string); strings.TrimSpace(s) == "" {
			return fmt.Errorf("part %d: item is required", i)
		}
		if _, ok := m["quantity"]; !ok {
			return fmt.Errorf("part %d: quantity is required", i)
		}
	}
	return nil
}

// SheetRequiredSetting names the setting that lists the items a complete sheet of a service
// in mode needs: sheet_required for on-site (and any unknown mode), sheet_required_phone,
// sheet_required_online. A phone service, for one, may do without the customer's stamp.
func SheetRequiredSetting(mode string) string {
	if mode == "phone" || mode == "online" {
		return "sheet_required_" + mode
	}
	return "sheet_required"
}

// SheetCompleteness says whether a sheet has every item of required (the sheet_required
// setting) and, when not, which are missing, named by field, in the order of
// SheetRequirable (then any other names in the order given). The server runs it when a
// sheet is written and signed; the SDK runs it so the app can tell the technician before
// the customer leaves.
func SheetCompleteness(sheet Doc, required []string) (complete bool, missing []string) {
	want := map[string]bool{}
	for _, r := range required {
		want[r] = true
	}
	order := make([]string, 0, len(required))
	for _, r := range SheetRequirable {
		if want[r] {
			order = append(order, r)
			delete(want, r)
		}
	}
	for _, r := range required {
		if want[r] {
			order = append(order, r)
			delete(want, r)
		}
	}
	missing = []string{}
	for _, name := range order {
		if sheetEmpty(sheet[name]) {
			missing = append(missing, name)
		}
	}
	return len(missing) == 0, missing
}

// sheetEmpty reports whether a sheet value counts as not filled in: absent, null, blank
// text, zero (an unrated rating), false or an empty list.
func sheetEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	case json.Number:
		n, err := x.Int64()
		return err == nil && n == 0
	case int:
		return x == 0
	case int64:
		return x == 0
	case float64:
		return x == 0
	case bool:
		return !x
	case []any:
		return len(x) == 0
	}
	return false
}

// SheetCounts reports whether a sheet counts for the month's statistics and pay: sealed,
// not voided, and complete or accepted as an exception by a coordinator.
func SheetCounts(sheet Doc) bool {
	switch sheet.Str("status") {
	case SheetSigned, SheetReceived:
	default:
		return false
	}
	return sheet.Bool("complete") || sheet.Bool("exception_accepted")
}

// SheetCanonical returns the bytes a sheet's fingerprint is the SHA-256 of: the canonical
// JSON (keys sorted, no white space, see CanonicalJSON) of
//
//	{"format": 1, "images": {field: sha256 of the image content}, "sheet": {sealed fields}}
//
// imageSums gives, for each non-empty image field, the SHA-256 of the content actually held
// (the server re-hashes the files, so a changed image changes the fingerprint).
func SheetCanonical(sheet Doc, imageSums map[string]string) []byte {
	content := map[string]any{}
	for _, k := range SheetSealedFields {
		content[k] = normalizeSealed(sheet[k])
	}
	format := SheetFormat
	if sheet.Str("device_signature") != "" {
		// Signed on the device (format 2): the seal covers the device's signature too.
		format = 2
		for _, k := range SheetDeviceSealed {
			content[k] = normalizeSealed(sheet[k])
		}
	}
	images := map[string]any{}
	for _, k := range SheetBlobFields {
		if sheet.Str(k) != "" {
			images[k] = imageSums[k]
		}
	}
	if sheet.Str("origin") == OriginPaper {
		// Entered from paper (format 3): the seal covers the origin, who entered it, the
		// ticks, and the content hash of every page of the scan, in order.
		format = 3
		for _, k := range SheetPaperSealed {
			content[k] = normalizeSealed(sheet[k])
		}
		pages := sheet.Strings("scan_blobs")
		scans := make([]any, len(pages))
		for i := range pages {
			scans[i] = imageSums[ScanKey(i)]
		}
		images["scan_blobs"] = scans
	}
	b, err := CanonicalJSON(map[string]any{"format": format, "sheet": content, "images": images})
	if err != nil {
		panic(fmt.Sprintf("schema: canonical sheet: %v", err)) // only JSON values are stored
	}
	return b
}

// normalizeSealed maps the empty forms a field may take (absent, "", null) to one, so that a
// sheet read back from the store fingerprints the same as when it was sealed.
func normalizeSealed(v any) any {
	if s, ok := v.(string); ok && s == "" {
		return nil
	}
	if l, ok := v.([]string); ok {
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	}
	return v
}

// SheetFingerprint is the lower-case hex SHA-256 of SheetCanonical: it covers the sealed
// fields, each image's content hash, and (through prev_fingerprint) the same technician's
// previous sealed sheet.
func SheetFingerprint(sheet Doc, imageSums map[string]string) string {
	sum := sha256.Sum256(SheetCanonical(sheet, imageSums))
	return hex.EncodeToString(sum[:])
}

// CanonicalJSON encodes v with object keys sorted by code point, no white space, integers
// written plainly, and strings escaped only where JSON requires it (", \, control
// characters as \b \f \n \r \t or \u00xx). For the values a sheet holds (strings, whole
// numbers, booleans, null, lists, objects with ASCII keys) this is RFC 8785 (JCS) and what
// Python's json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes.
func CanonicalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	err := canonical(&b, v)
	return b.Bytes(), err
}

func canonical(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		canonicalString(b, x)
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case json.Number:
		n, err := strconv.ParseInt(x.String(), 10, 64)
		if err != nil {
			return fmt.Errorf("number %s is not a whole number", x)
		}
		b.WriteString(strconv.FormatInt(n, 10))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := canonical(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case []string:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			canonicalString(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		return canonicalObject(b, x)
	case Doc:
		return canonicalObject(b, x)
	default:
		return fmt.Errorf("value of type %T has no canonical JSON form", v)
	}
	return nil
}

func canonicalObject(b *bytes.Buffer, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // byte order is code point order for UTF-8
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		canonicalString(b, k)
		b.WriteByte(':')
		if err := canonical(b, m[k]); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

func canonicalString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// ValidBlobSum reports whether s is a blob name: 64 lower-case hex digits.
func ValidBlobSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckLocation accepts "" or "lat,lng" in decimal degrees (e.g. "31.2304,121.4737").
func CheckLocation(s string) error {
	if s == "" {
		return nil
	}
	lat, lng, ok := strings.Cut(s, ",")
	if !ok {
		return FieldError(CodeValidation, "location", "location %q must be \"lat,lng\" in decimal degrees", s)
	}
	la, err1 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
	lo, err2 := strconv.ParseFloat(strings.TrimSpace(lng), 64)
	if err1 != nil || err2 != nil || la < -90 || la > 90 || lo < -180 || lo > 180 {
		return FieldError(CodeValidation, "location", "location %q must be \"lat,lng\" with latitude -90..90 and longitude -180..180", s)
	}
	return nil
}
