package e2e

import (
	"os"
	"testing"

	"golang.org/x/crypto/bcrypt"

	syncer "fieldsync/sync"
)

// TestMain hashes passwords at bcrypt's lowest cost: every test boots a demo company of
// seven accounts and logs in often, and at the default cost each hash takes seconds under
// -race on a busy machine. The hashing itself is the real one.
func TestMain(m *testing.M) {
	syncer.PasswordCost = bcrypt.MinCost
	os.Exit(m.Run())
}
