package sync

import (
	"context"

	"fieldsync/schema"
)

// InScope reports whether the record entity/id is in the actor's scope: what the actor's
// devices hold. Office roles pull the whole store, so every record is in their scope; a
// technician's scope is the scope table (their tickets with what those reference, their
// events and sheets, and what every device holds).
func (e *Engine) InScope(ctx context.Context, actor schema.Actor, entity, id string) (bool, error) {
	if actor.Role != schema.RoleTechnician {
		return true, nil
	}
	var n int
	err := e.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM scope
		WHERE user_id IN (?, '*') AND entity = ? AND id = ? AND present = 1`, actor.UserID, entity, id).Scan(&n)
	return n > 0, err
}
