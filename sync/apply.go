package sync

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"fieldsync/schema"
)

// applyOne judges and applies one mutation. A *schema.Error is a rejection; any other
// error is an I/O failure.
func (w *wtx) applyOne(actor schema.Actor, m Mutation, opts Options) (Result, error) {
	ent, ok := schema.LookupEntity(m.Entity)
	if !ok {
		return Result{}, schema.FieldError(schema.CodeValidation, "entity", "unknown entity %q", m.Entity)
	}
	if m.Op == "create" && m.ID == "" && opts.Device == "" {
		m.ID = uuid.Must(uuid.NewV7()).String()
	}
	if !ValidID(m.ID) {
		return Result{}, schema.FieldError(schema.CodeValidation, "id", "id %q is not a valid record id (1-64 letters, digits, - or _)", m.ID)
	}
	if actor.Role == schema.RoleTechnician && (m.Op == "create" || m.Op == "update") {
		if err := w.checkForeignRefs(actor, ent, m.Fields); err != nil {
			return Result{}, err
		}
	}
	if m.Op != "create" && w.rejectedCreates[m.Entity+"/"+m.ID] {
		return Result{}, schema.Errorf(schema.CodeDependsOnRejected, "the create of %s %s was rejected earlier in this batch", m.Entity, m.ID)
	}
	var (
		next      schema.Doc
		conflicts []Conflict
		err       error
	)
	switch m.Op {
	case "create":
		next, err = w.createFromMutation(actor, ent, m)
	case "update":
		next, conflicts, err = w.update(actor, ent, m, opts)
	case "action":
		next, err = w.action(actor, ent, m)
	case "delete":
		err = schema.Errorf(schema.CodeForbidden, "%s records are never deleted: cancel, void or correct them instead", m.Entity)
	default:
		err = schema.FieldError(schema.CodeValidation, "op", "op %q is not one of create, update, delete, action", m.Op)
	}
	if err != nil {
		if se, ok := schema.AsError(err); ok && se.Code == schema.CodeNotFound && m.Op != "create" {
			if dep, derr := w.dependsOnRejected(opts.Device, m); derr != nil {
				return Result{}, derr
			} else if dep {
				return Result{}, schema.Errorf(schema.CodeDependsOnRejected, "the create of %s %s was rejected", m.Entity, m.ID)
			}
			if actor.Role == schema.RoleTechnician {
				return Result{}, schema.Errorf(schema.CodeOutOfScope, "%s %s is not in your scope", m.Entity, m.ID)
			}
		}
		return Result{}, err
	}
	status := StatusApplied
	if len(conflicts) > 0 {
		status = StatusMerged
	}
	return Result{MID: m.MID, Status: status, Version: next.Int("version"), Record: schema.MustJSON(next),
		Conflicts: conflicts, Entity: m.Entity, ID: next.Str("id")}, nil
}

// checkForeignRefs refuses a technician's reference to a customer, site or asset that is
// not on their devices: pointing their own ticket at it would pull someone else's customer
// to the phone. The answer is the same whether the id exists or not. Ticket references are
// judged by the entity's own rules (work on a ticket that left the scope is kept for the
// coordinator), and user references by the workflow.
func (w *wtx) checkForeignRefs(actor schema.Actor, ent *schema.Entity, fields map[string]json.RawMessage) error {
	for _, f := range ent.Fields {
		raw, ok := fields[f.Name]
		if !ok || f.Kind != schema.KRef || f.Ref == schema.EntTicket || f.Ref == schema.EntUser {
			continue
		}
		var id string
		if json.Unmarshal(raw, &id) != nil || id == "" {
			continue // the field's own check names a wrong type
		}
		if !w.inScope(actor.UserID, f.Ref, id) && !w.inScope("*", f.Ref, id) {
			return schema.FieldError(schema.CodeOutOfScope, f.Name, "%s %s is not in your scope: a coordinator links records you do not hold", f.Ref, id)
		}
	}
	return nil
}

func (w *wtx) dependsOnRejected(device string, m Mutation) (bool, error) {
	if device == "" {
		return false, nil
	}
	var n int
	err := w.tx.QueryRow(`SELECT COUNT(*) FROM mutations WHERE device = ? AND entity = ? AND rid = ? AND op = 'create' AND status = 'rejected'`,
		device, m.Entity, m.ID).Scan(&n)
	return n > 0, err
}

// decodeFields checks every field a client sent: known, writable by the actor's side, of
// the right type. Unknown fields are refused, never ignored.
func decodeFields(actor schema.Actor, ent *schema.Entity, fields map[string]json.RawMessage, creating bool) (schema.Doc, error) {
	out := schema.Doc{}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		f, ok := ent.Field(name)
		if !ok {
			return nil, schema.FieldError(schema.CodeBadRequest, name, "unknown field %q: %s has no such field", name, ent.Name)
		}
		if f.Writers == schema.SideServer || !writerAllows(f.Writers, actor.Role) {
			return nil, schema.FieldError(schema.CodeForbidden, name, "a %s may not set %s.%s", actor.Role, ent.Name, name)
		}
		if f.CreateOnly && !creating {
			return nil, schema.FieldError(schema.CodeValidation, name, "%s.%s is set when the record is created and cannot be changed", ent.Name, name)
		}
		v, err := schema.DecodeValue(f, fields[name])
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

func writerAllows(s schema.Side, role string) bool {
	switch s {
	case schema.SideBoth:
		return true
	case schema.SideOffice, schema.SideField:
		return schema.SideOf(role) == s
	}
	return false
}

func (w *wtx) createFromMutation(actor schema.Actor, ent *schema.Entity, m Mutation) (schema.Doc, error) {
	if !slices.Contains(ent.CreateRoles, actor.Role) {
		return nil, schema.Errorf(schema.CodeForbidden, "%s 不能新建 %s 记录 / a %s may not create %s records (allowed: %s)", actor.Role, ent.Name, actor.Role, ent.Name, strings.Join(ent.CreateRoles, ", "))
	}
	fields, err := decodeFields(actor, ent, m.Fields, true)
	if err != nil {
		return nil, err
	}
	explicit := map[string]bool{}
	for k := range m.Fields {
		explicit[k] = true
	}
	return w.create(actor, ent.Name, m.ID, fields, m.At, explicit)
}

// create writes a new record after the entity's own rules filled and checked it.
func (w *wtx) create(actor schema.Actor, entity, id string, fields schema.Doc, deviceAt string, explicit map[string]bool) (schema.Doc, error) {
	ent, _ := schema.LookupEntity(entity)
	if _, _, err := w.get(entity, id); err == nil {
		return nil, schema.FieldError(schema.CodeConflict, "id", "%s %s already exists", entity, id)
	} else if se, ok := schema.AsError(err); !ok || se.Code != schema.CodeNotFound {
		return nil, err
	}
	d := ent.Blank(id)
	for k, v := range fields {
		d[k] = v
	}
	for _, f := range ent.Fields {
		if f.Required && (d[f.Name] == nil || d[f.Name] == "") {
			return nil, schema.FieldError(schema.CodeValidation, f.Name, "%s is required", f.Name)
		}
	}
	if err := w.onCreate(actor, entity, d, explicit); err != nil {
		return nil, err
	}
	d["created_at"] = schema.Stamp(w.now)
	if deviceAt != "" {
		d["device_created_at"] = deviceAt
	}
	out, err := w.write(actor, entity, nil, d, "create", "", nil)
	if err == nil && entity == schema.EntSheet && out.Str("origin") == schema.OriginPaper {
		err = w.afterPaperSheet(actor, out)
	}
	return out, err
}

// onCreate runs the entity's rules for a new record.
func (w *wtx) onCreate(actor schema.Actor, entity string, d schema.Doc, explicit map[string]bool) error {
	switch entity {
	case schema.EntTicket:
		if err := schema.NewTicket(w, actor, d, explicit); err != nil {
			return err
		}
		num, err := w.ticketNumber()
		if err != nil {
			return err
		}
		d["number"] = num
	case schema.EntSite:
		if _, err := w.Get(schema.EntCustomer, d.Str("customer_id")); err != nil {
			return schema.FieldError(schema.CodeValidation, "customer_id", "customer %q does not exist", d.Str("customer_id"))
		}
		if d["contacts"] == nil {
			d["contacts"] = []any{}
		}
	case schema.EntCustomer:
		return w.unique(schema.EntCustomer, "code", "data ->> 'code'", d)
	case schema.EntAsset:
		if err := w.unique(schema.EntAsset, "serial", "serial", d); err != nil {
			return err
		}
		return w.checkAssetRefs(d)
	case schema.EntTicketEvent:
		// A technician's scope is checked first, by the id sent, so that the answer reveals
		// neither whether a ticket outside it exists nor its number.
		if actor.Role == schema.RoleTechnician && !w.inScope(actor.UserID, schema.EntTicket, d.Str("ticket_id")) {
			return schema.FieldError(schema.CodeOutOfScope, "ticket_id", "ticket %s is not in your scope", d.Str("ticket_id"))
		}
		if ok, err := w.exists(schema.EntTicket, d.Str("ticket_id")); err != nil {
			return err
		} else if !ok {
			return schema.FieldError(schema.CodeValidation, "ticket_id", "ticket %q does not exist", d.Str("ticket_id"))
		}
		if d.Str("kind") == "" {
			d["kind"] = "note"
			if strings.TrimSpace(d.Str("note")) == "" {
				return schema.FieldError(schema.CodeValidation, "note", "note is required")
			}
		}
		if d.Str("actor_id") == "" {
			d["actor_id"], d["device_id"], d["at"] = actor.UserID, actor.DeviceID, schema.Stamp(w.now)
		}
	case schema.EntComplaint:
		t, err := w.Get(schema.EntTicket, d.Str("ticket_id"))
		if err != nil {
			return schema.FieldError(schema.CodeValidation, "ticket_id", "ticket %q does not exist", d.Str("ticket_id"))
		}
		if d.Str("technician_id") == "" {
			d["technician_id"] = cmp.Or(t.Str("completed_by"), t.Str("assignee_id"))
		}
		if d.Str("technician_id") == "" {
			return schema.FieldError(schema.CodeValidation, "technician_id", "ticket %s has no technician: name technician_id", t.Str("number"))
		}
		if u, err := w.Get(schema.EntUser, d.Str("technician_id")); err != nil || u.Str("role") != schema.RoleTechnician {
			return schema.FieldError(schema.CodeValidation, "technician_id", "technician_id %q is not a technician", d.Str("technician_id"))
		}
		d["status"] = "open"
		if d.Str("received_at") == "" {
			d["received_at"] = schema.Stamp(w.now)
		}
	case schema.EntFollowup:
		t, err := w.Get(schema.EntTicket, d.Str("ticket_id"))
		if err != nil {
			return schema.FieldError(schema.CodeValidation, "ticket_id", "ticket %q does not exist", d.Str("ticket_id"))
		}
		switch t.Str("status") {
		case schema.StSheetReceived, schema.StFollowedUp, schema.StClosed:
		default:
			return &schema.Error{Code: schema.CodeInvalidTransition, Record: t,
				Message: fmt.Sprintf("ticket %s is %s: follow-up calls are made after its feedback sheet was received", t.Str("number"), t.Str("status"))}
		}
		d["called_by"] = actor.UserID
		d["technician_id"] = cmp.Or(t.Str("completed_by"), t.Str("assignee_id"))
		if d.Str("called_at") == "" {
			d["called_at"] = schema.Stamp(w.now)
		}
		if t.Str("status") != schema.StClosed {
			if _, err := w.applyAction(actor, schema.EntTicket, t, "follow_up", schema.Doc{}); err != nil {
				return err
			}
		}
	case schema.EntSheet:
		return w.onSheetCreate(actor, d)
	case schema.EntApproval, schema.EntExpense, schema.EntSale, schema.EntRepair, schema.EntUnreported:
		if err := w.checkMoneyTicket(actor, d); err != nil {
			return err
		}
		return w.onMoneyCreate(actor, entity, d)
	}
	return nil
}

// checkMoneyTicket checks the ticket a money record names: it exists and, for a technician,
// is on their devices (asked first, so the answer reveals nothing outside the scope).
func (w *wtx) checkMoneyTicket(actor schema.Actor, d schema.Doc) error {
	id := d.Str("ticket_id")
	if id == "" {
		return nil
	}
	if actor.Role == schema.RoleTechnician && !w.inScope(actor.UserID, schema.EntTicket, id) {
		return schema.FieldError(schema.CodeOutOfScope, "ticket_id", "ticket %s is not in your scope", id)
	}
	if ok, err := w.exists(schema.EntTicket, id); err != nil {
		return err
	} else if !ok {
		return schema.FieldError(schema.CodeValidation, "ticket_id", "ticket %q does not exist", id)
	}
	return nil
}

func (w *wtx) onMoneyCreate(actor schema.Actor, entity string, d schema.Doc) error {
	switch entity {
	case schema.EntApproval:
		return schema.NewApproval(w, actor, d)
	case schema.EntExpense:
		if err := schema.NewExpense(w, actor, d); err != nil {
			return err
		}
		if sum := d.Str("receipt_blob"); sum != "" {
			if _, err := w.checkBlob("receipt_blob", sum); err != nil {
				return err
			}
		}
	case schema.EntSale:
		return schema.NewSale(w, actor, d)
	case schema.EntRepair:
		if actor.Role == schema.RoleTechnician && !w.inScope(actor.UserID, schema.EntAsset, d.Str("asset_id")) {
			return schema.FieldError(schema.CodeOutOfScope, "asset_id", "asset %s is not in your scope", d.Str("asset_id"))
		}
		return schema.NewRepair(w, actor, d)
	case schema.EntUnreported:
		if err := schema.NewUnreported(w, actor, d); err != nil {
			return err
		}
		return w.unique(schema.EntUnreported, "complaint_id", "data ->> 'complaint_id'", d)
	}
	return nil
}

// unique refuses a value of field that another record of the entity has already: a
// customer's code and an asset's serial are what imports and intake find them by. col is
// the SQL expression of the field (an indexed column where there is one).
func (w *wtx) unique(entity, field, col string, d schema.Doc) error {
	v := strings.TrimSpace(d.Str(field))
	if v == "" {
		return nil
	}
	var other string
	err := w.tx.QueryRow(`SELECT id FROM records WHERE entity = ? AND deleted = 0 AND `+col+` = ? AND id <> ? LIMIT 1`,
		entity, v, d.Str("id")).Scan(&other)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return schema.FieldError(schema.CodeValidation, field, "%s %q is taken by another %s (%s)", field, v, entity, other)
}

func (w *wtx) checkAssetRefs(d schema.Doc) error {
	if _, err := w.Get(schema.EntCustomer, d.Str("customer_id")); err != nil {
		return schema.FieldError(schema.CodeValidation, "customer_id", "customer %q does not exist", d.Str("customer_id"))
	}
	if id := d.Str("site_id"); id != "" {
		s, err := w.Get(schema.EntSite, id)
		if err != nil {
			return schema.FieldError(schema.CodeValidation, "site_id", "site %q does not exist", id)
		}
		if s.Str("customer_id") != d.Str("customer_id") {
			return schema.FieldError(schema.CodeValidation, "site_id", "site %q belongs to another customer", id)
		}
	}
	return nil
}

// ticketNumber hands out the next number of the month in the company's time zone, e.g.
// SR-202611-0042. Numbers of rolled-back creates are not reused: gaps are tolerated.
func (w *wtx) ticketNumber() (string, error) {
	month := w.now.In(w.Settings().Location()).Format("200601")
	var n int64
	err := w.tx.QueryRow(`INSERT INTO counters(name, value) VALUES (?, 1)
		ON CONFLICT(name) DO UPDATE SET value = counters.value + 1 RETURNING value`, "ticket-"+month).Scan(&n)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("SR-%s-%04d", month, n), nil
}

func (w *wtx) update(actor schema.Actor, ent *schema.Entity, m Mutation, opts Options) (schema.Doc, []Conflict, error) {
	if !slices.Contains(ent.UpdateRoles, actor.Role) {
		return nil, nil, schema.Errorf(schema.CodeForbidden, "a %s may not edit %s records", actor.Role, ent.Name)
	}
	cur, version, err := w.get(ent.Name, m.ID)
	if err != nil {
		return nil, nil, err
	}
	if err := w.canEdit(actor, ent.Name, cur); err != nil {
		return nil, nil, err
	}
	if len(m.Fields) == 0 {
		return nil, nil, schema.FieldError(schema.CodeValidation, "fields", "an update names at least one field")
	}
	fields, err := decodeFields(actor, ent, m.Fields, false)
	if err != nil {
		return nil, nil, err
	}
	if m.BaseVersion > version {
		return nil, nil, &schema.Error{Code: schema.CodeConflict, Field: "base_version", Record: cur,
			Message: fmt.Sprintf("base_version %d is ahead of the server's version %d of %s %s", m.BaseVersion, version, ent.Name, m.ID)}
	}
	var conflicts []Conflict
	if m.BaseVersion < version {
		if !opts.Merge {
			return nil, nil, w.staleEdit(ent, cur, m, version)
		}
		theirs, err := w.changedSince(ent.Name, m.ID, m.BaseVersion, opts.Device)
		if err != nil {
			return nil, nil, err
		}
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			if !theirs[name] {
				continue // only this side changed it: it merges
			}
			f, _ := ent.Field(name)
			if f.Owner == schema.SideServer || f.Owner == schema.SideOf(actor.Role) || schema.Equal(cur[name], fields[name]) {
				continue // the owner's edit, or for a field no side owns the later one, wins; the other value stays in the history
			}
			conflicts = append(conflicts, Conflict{Field: name, Lost: fields[name], Kept: cur[name], Owner: ownerName(f.Owner)})
			delete(fields, name)
		}
	}
	next := cur.Clone()
	for k, v := range fields {
		next[k] = v
	}
	if err := w.onUpdate(actor, ent.Name, cur, next, fields); err != nil {
		return nil, nil, err
	}
	d, err := w.write(actor, ent.Name, cur, next, "update", "", conflicts)
	return d, conflicts, err
}

func ownerName(s schema.Side) string { return s.String() }

// entityZH names the records the office edits, in Chinese.
var entityZH = map[string]string{schema.EntTicket: "工单", schema.EntCustomer: "客户", schema.EntSite: "地点", schema.EntAsset: "设备", schema.EntUser: "用户", schema.EntSale: "销售单"}

// staleEdit is the answer to an API edit based on version m.BaseVersion of a record now at
// version: precondition_failed, naming the fields changed meanwhile that the edit also sets
// (fields: the collisions the editor must decide) and every editable field changed meanwhile
// (changed), with the current record (their values).
func (w *wtx) staleEdit(ent *schema.Entity, cur schema.Doc, m Mutation, version int64) error {
	theirs, err := w.changedSince(ent.Name, m.ID, m.BaseVersion, "")
	if err != nil {
		return err
	}
	changed, both := []string{}, []string{}
	for _, name := range slices.Sorted(maps.Keys(theirs)) {
		if f, ok := ent.Field(name); !ok || f.Writers == schema.SideServer {
			continue // bookkeeping and what the rules derive (deadlines, stamps)
		}
		changed = append(changed, name)
		if _, mine := m.Fields[name]; mine {
			both = append(both, name)
		}
	}
	what := cmp.Or(cur.Str("number"), m.ID)
	zh, en := "请核对对方修改的内容后再保存", "compare and save again"
	if len(both) > 0 {
		zh = "双方都改了：" + strings.Join(both, "、") + "。请选择保留哪一个值"
		en = "both of you changed " + strings.Join(both, ", ") + ": choose which value to keep"
	} else if len(changed) > 0 {
		zh = "对方改了：" + strings.Join(changed, "、") + "，与您的修改不冲突，请确认后再保存"
		en = "they changed " + strings.Join(changed, ", ") + ", none of which you edit: check and save again"
	}
	return &schema.Error{Code: schema.CodePreconditionFailed, Record: cur, Field: "If-Match",
		Extra: map[string]any{"fields": both, "changed": changed, "your_version": m.BaseVersion, "current_version": version},
		Message: fmt.Sprintf("%s %s 在您编辑期间已被他人修改（您的版本 %d，现为 %d）；%s / %s %s was changed by someone else while you edited it (your version %d, now %d): %s",
			cmp.Or(entityZH[ent.Name], ent.Name), what, m.BaseVersion, version, zh, ent.Name, what, m.BaseVersion, version, en)}
}

// changedSince returns the fields of a record changed by writes after version base, leaving
// out the writes of device itself: a phone's earlier mutations in the same offline session
// are not the other side, and its later edit of the same field must not lose to them.
func (w *wtx) changedSince(entity, id string, base int64, device string) (map[string]bool, error) {
	if err := w.flushChanges(); err != nil {
		return nil, err
	}
	rows, err := w.tx.Query(`SELECT fields FROM changes WHERE entity = ? AND id = ? AND version > ? AND (? = '' OR device_id <> ?)`,
		entity, id, base, device, device)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var f map[string]json.RawMessage
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, err
		}
		for k := range f {
			out[k] = true
		}
	}
	return out, rows.Err()
}

// canEdit checks a technician's right to touch a record at all: only their own open
// tickets (and sheets, handled by the sheet rules).
func (w *wtx) canEdit(actor schema.Actor, entity string, cur schema.Doc) error {
	if actor.Role != schema.RoleTechnician {
		return nil
	}
	if !w.inScope(actor.UserID, entity, cur.Str("id")) {
		return schema.Errorf(schema.CodeOutOfScope, "%s %s is not in your scope", entity, cur.Str("id"))
	}
	if entity == schema.EntTicket {
		mine := cur.Str("assignee_id") == actor.UserID || cur.Str("status") == schema.StReported && cur.Str("reported_by") == actor.UserID
		if !mine {
			return schema.Errorf(schema.CodeForbidden, "ticket %s is not assigned to you", cur.Str("number"))
		}
		if st := cur.Str("status"); schema.Terminal(st) {
			return &schema.Error{Code: schema.CodeInvalidTransition, Record: cur,
				Message: fmt.Sprintf("ticket %s is %s: it takes no more field work", cur.Str("number"), st)}
		}
	}
	return nil
}

func (w *wtx) onUpdate(actor schema.Actor, entity string, cur, next, changed schema.Doc) error {
	switch entity {
	case schema.EntTicket:
		refs := false
		for _, k := range []string{"customer_id", "site_id", "asset_id"} {
			_, ok := changed[k]
			refs = refs || ok
		}
		if refs {
			if err := schema.CheckTicketRefs(w, next); err != nil {
				return err
			}
		}
		if _, ok := changed["warranty"]; ok && next.Str("warranty") != cur.Str("warranty") && strings.TrimSpace(next.Str("warranty_reason")) == "" {
			return schema.FieldError(schema.CodeValidation, "warranty_reason", "changing warranty needs warranty_reason")
		}
		if _, ok := changed["urgency"]; ok {
			resp, arr := w.Settings().Deadlines(next.Str("urgency"), next.Time("received_at"))
			next["due_response_at"], next["due_arrival_at"] = schema.Stamp(resp), schema.Stamp(arr)
		}
	case schema.EntCustomer:
		return w.unique(schema.EntCustomer, "code", "data ->> 'code'", next)
	case schema.EntUser:
		var contact []string
		for _, k := range schema.ContactFields {
			if _, ok := changed[k]; ok {
				contact = append(contact, k)
			}
		}
		if len(contact) > 0 {
			if err := schema.CheckContact(next, contact...); err != nil {
				return err
			}
		}
		if list, _ := next["employment"].([]any); len(list) > 0 {
			_, dated := changed["employment"]
			for _, k := range []string{"probation", "dedicated"} {
				if _, ok := changed[k]; ok && !dated {
					return schema.FieldError(schema.CodeValidation, k, "%s has a dated history: record the change with its date in employment", k)
				}
			}
			next["probation"], next["dedicated"] = schema.EmploymentOn(next, w.now.In(w.Settings().Location()).Format(time.DateOnly))
		}
	case schema.EntAsset:
		if err := w.unique(schema.EntAsset, "serial", "serial", next); err != nil {
			return err
		}
		return w.checkAssetRefs(next)
	case schema.EntSetting:
		v, err := schema.CheckSetting(next.Str("key"), next["value"])
		if err != nil {
			return err
		}
		if u, ok := v.(string); ok && next.Str("key") == "public_url" {
			if err := schema.CheckPublicURL(u); err != nil {
				return err
			}
		}
		next["value"] = v
		w.settingsChanged = true
	case schema.EntSheet:
		return w.onSheetUpdate(actor, cur, next, changed)
	}
	return nil
}

func (w *wtx) action(actor schema.Actor, ent *schema.Entity, m Mutation) (schema.Doc, error) {
	cur, _, err := w.get(ent.Name, m.ID)
	if err != nil {
		return nil, err
	}
	if actor.Role == schema.RoleTechnician && !w.inScope(actor.UserID, ent.Name, m.ID) {
		return nil, schema.Errorf(schema.CodeOutOfScope, "%s %s is not in your scope", ent.Name, m.ID)
	}
	params, err := decodeParams(m.Fields)
	if err != nil {
		return nil, err
	}
	if m.Action == "" {
		return nil, schema.FieldError(schema.CodeValidation, "action", "op action needs an action name")
	}
	if ent.Name == schema.EntSheet && m.At != "" && params["at"] == nil {
		params["at"] = m.At // the device's time, kept as the sheet's signing time
	}
	if ent.Name == schema.EntTicket {
		// The phone's clock at the step, which the deadlines may use (schema.StepTime);
		// only a device's own mutation says it.
		delete(params, "device_at")
		if actor.DeviceID != "" && m.At != "" {
			params["device_at"] = m.At
		}
	}
	return w.applyAction(actor, ent.Name, cur, m.Action, params)
}

// applyAction runs a named workflow step on a record and its effects.
func (w *wtx) applyAction(actor schema.Actor, entity string, cur schema.Doc, action string, params schema.Doc) (schema.Doc, error) {
	var (
		next    schema.Doc
		effects []schema.Effect
		err     error
	)
	switch entity {
	case schema.EntTicket:
		if action == "reopen" {
			params["new_id"] = uuid.Must(uuid.NewV7()).String()
		}
		var noSheet string
		if action == "receive_sheet" {
			if noSheet, err = w.sheetOrReason(actor, cur, params); err != nil {
				return nil, err
			}
		}
		next, effects, err = schema.TicketAction(w, actor, cur, action, params)
		if err == nil && noSheet != "" {
			next["no_sheet_reason"], next["no_sheet_by"] = noSheet, actor.UserID
		}
		if err == nil {
			err = w.deviceStepTime(actor, action, next, params.Str("device_at"))
		}
	case schema.EntComplaint:
		next, err = schema.ComplaintAction(w, actor, cur, action, params)
	case schema.EntSheet:
		next, effects, err = w.sheetAction(actor, cur, action, params)
	case schema.EntApproval:
		next, err = schema.ApprovalAction(w, actor, cur, action, params)
	case schema.EntExpense:
		next, err = schema.ExpenseAction(w, actor, cur, action, params)
	case schema.EntSale:
		next, err = schema.SaleAction(w, actor, cur, action, params)
	case schema.EntRepair:
		next, err = schema.RepairAction(w, actor, cur, action, params)
	default:
		err = schema.FieldError(schema.CodeValidation, "action", "%s records take no actions", entity)
	}
	if err != nil {
		return nil, err
	}
	// Effects that create records run first, so links point at records that exist.
	for _, ef := range effects {
		if ef.Op == "create" {
			if _, err := w.create(actor, ef.Entity, ef.ID, ef.Fields, "", keysOf(ef.Fields)); err != nil {
				return nil, err
			}
		}
	}
	out, err := w.write(actor, entity, cur, next, "action", action, nil)
	if err != nil {
		return nil, err
	}
	if entity == schema.EntTicket {
		details := maps.Clone(map[string]any(params))
		if fieldStep[action] && actor.Role != schema.RoleTechnician && cur.Str("assignee_id") != "" {
			// The office recorded the technician's step (the paper path): the history says so.
			details["on_behalf_of"] = cur.Str("assignee_id")
		}
		ev := schema.Doc{"ticket_id": cur.Str("id"), "kind": "action", "action": action, "from_status": cur.Str("status"),
			"to_status": next.Str("status"), "actor_id": actor.UserID, "device_id": actor.DeviceID, "at": schema.Stamp(w.now), "details": details}
		if r := params.Str("reason"); r != "" {
			ev["note"] = r
		}
		if _, err := w.create(actor, schema.EntTicketEvent, uuid.Must(uuid.NewV7()).String(), ev, "", nil); err != nil {
			return nil, err
		}
		if err := w.lateStep(action, out); err != nil {
			return nil, err
		}
	}
	for _, ef := range effects {
		if ef.Op == "action" {
			target, err := w.Get(ef.Entity, ef.ID)
			if err != nil {
				return nil, err
			}
			if _, err := w.applyAction(actor, ef.Entity, target, ef.Action, ef.Params); err != nil {
				return nil, err
			}
		}
	}
	if entity == schema.EntTicket && action == "complete" {
		// A sheet received before the work was recorded complete (a paper sheet entered
		// early) moves the ticket on at once, as its receipt would have: done by fieldsync,
		// since the one completing (a technician) may not take the office's step.
		var one int
		err := w.tx.QueryRow(`SELECT 1 FROM records WHERE entity = ? AND deleted = 0 AND ticket_id = ? AND status = ? LIMIT 1`,
			schema.EntSheet, cur.Str("id"), schema.SheetReceived).Scan(&one)
		if err == nil {
			if _, err := w.applyAction(schema.System, entity, out.Clone(), "receive_sheet", schema.Doc{}); err != nil {
				return nil, err
			}
			return w.Get(entity, cur.Str("id"))
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	return out, nil
}

// fieldStep are the ticket steps that are the technician's own work; taken by anyone else
// they are recorded on the technician's behalf.
var fieldStep = map[string]bool{"accept": true, "en_route": true, "arrive": true, "start": true, "complete": true}

// sheetOrReason lets a ticket move to sheet_received only when one of its feedback sheets
// was received, or when a manager records that there is no sheet and why (the month report
// lists such services). It returns that reason, "" when a sheet was received.
func (w *wtx) sheetOrReason(actor schema.Actor, t schema.Doc, params schema.Doc) (string, error) {
	var one int
	err := w.tx.QueryRow(`SELECT 1 FROM records WHERE entity = ? AND deleted = 0 AND ticket_id = ? AND status = ? LIMIT 1`,
		schema.EntSheet, t.Str("id"), schema.SheetReceived).Scan(&one)
	if err == nil {
		return "", nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	reason := strings.TrimSpace(params.Str("no_sheet_reason"))
	if params["no_sheet_reason"] == nil {
		return "", &schema.Error{Code: schema.CodeInvalidTransition, Record: t, Message: fmt.Sprintf(
			"工单 %s 没有已接收的反馈单：请接收反馈单，或由经理登记无反馈单及原因 / ticket %s has no received feedback sheet: receive its sheet, or a manager records no_sheet_reason",
			t.Str("number"), t.Str("number"))}
	}
	if actor.Role != schema.RoleManager && actor.Role != schema.RoleAdmin {
		return "", schema.Errorf(schema.CodeForbidden, "登记无反馈单由部门经理决定 / recording that there is no sheet is the manager's decision, not a %s's", actor.Role)
	}
	if reason == "" {
		return "", &schema.Error{Code: schema.CodeInvalidTransition, Field: "no_sheet_reason", Record: t,
			Message: "请写明没有反馈单的原因 / say why there is no sheet in no_sheet_reason"}
	}
	if n := len([]rune(reason)); n > schema.MaxText {
		return "", schema.FieldError(schema.CodeValidation, "no_sheet_reason", "no_sheet_reason is %d characters long; at most %d", n, schema.MaxText)
	}
	return reason, nil
}

func keysOf(d schema.Doc) map[string]bool {
	out := map[string]bool{}
	for k := range d {
		out[k] = true
	}
	return out
}

// write stores next (cur is nil for a create) with its version incremented, appends the
// change entry with the fields that changed, and moves the scopes. It is the only code that
// writes the records and changes tables.
func (w *wtx) write(actor schema.Actor, entity string, cur, next schema.Doc, op, action string, conflicts []Conflict) (schema.Doc, error) {
	id := next.Str("id")
	var version int64
	diff := map[string][2]any{}
	if cur != nil {
		version = cur.Int("version")
	}
	for k, v := range next {
		if k == "version" || k == "updated_at" {
			continue
		}
		var old any
		if cur != nil {
			old = cur[k]
		}
		if cur == nil || !schema.Equal(old, v) {
			if cur == nil && (v == nil || v == "") {
				continue
			}
			diff[k] = [2]any{old, v}
		}
	}
	if cur != nil && len(diff) == 0 && len(conflicts) == 0 {
		return cur, nil // nothing changed: no new version, no change entry
	}
	version++
	seq := w.nextSeq()
	next["version"] = schema.Num(version)
	next["updated_at"] = schema.Stamp(w.now)
	data := schema.MustJSON(next)
	var err error
	if cur == nil {
		_, err = w.tx.Exec(`INSERT INTO records(entity, id, version, last_seq, data) VALUES (?, ?, ?, ?, ?)`, entity, id, version, seq, data)
	} else {
		_, err = w.tx.Exec(`UPDATE records SET version = ?, last_seq = ?, data = ?, deleted = 0 WHERE entity = ? AND id = ?`, version, seq, data, entity, id)
	}
	if err != nil {
		return nil, err
	}
	if entity == schema.EntSetting && schema.SecretSetting(id) { // the log keeps no copy of a secret
		if _, ok := diff["value"]; ok {
			diff["value"] = [2]any{"(secret)", "(secret)"}
		}
	}
	cj := map[string]any{}
	for _, c := range conflicts {
		cj[c.Field] = map[string]any{"lost": c.Lost, "kept": c.Kept, "owner": c.Owner}
	}
	w.changes = append(w.changes, seq, entity, id, version, op, action, actor.UserID, actor.DeviceID, schema.Stamp(w.now), schema.MustJSON(diff), schema.MustJSON(cj))
	if err := w.moveScopes(entity, cur, next, seq); err != nil {
		return nil, err
	}
	switch entity {
	case schema.EntSetting:
		w.settingsChanged = true
	case schema.EntUser: // disabled, role changed: open sessions are checked again
		w.accounts[id] = true
	}
	if err := w.raiseAlerts(entity, op, action, next); err != nil {
		return nil, err
	}
	w.global = true
	return next, nil
}
