package sync

import (
	"errors"

	"github.com/mattn/go-sqlite3"
)

var sqliteConstraintUnique = sqlite3.ErrConstraintUnique

// sqliteCode returns the extended SQLite error code of err, if it is one.
func sqliteCode(err error) sqlite3.ErrNoExtended {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode
	}
	return 0
}
