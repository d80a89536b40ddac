package schema_test

import (
	"context"
	"strings"
	"testing"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
)

func TestRebindToPostgres(t *testing.T) {
	cases := []struct{ in, want string }{
		{`SELECT data FROM records WHERE entity = ? AND id = ?`, `SELECT data FROM records WHERE entity = $1 AND id = $2`},
		// a question mark inside quotes or a comment is not a parameter
		{`SELECT '?', "a?b" FROM t -- why?
			WHERE x = ?`, `SELECT '?', "a?b" FROM t -- why?
			WHERE x = $1`},
		{`SELECT x FROM t WHERE status IN (SELECT value FROM json_each(?)) AND y = ?`,
			`SELECT x FROM t WHERE status IN (SELECT value FROM json_array_elements_text(CAST($1 AS json))) AND y = $2`},
		{`SELECT id FROM records INDEXED BY records_ticket WHERE ticket_id = ?`, `SELECT id FROM records  WHERE ticket_id = $1`},
		{`SELECT id FROM r WHERE name LIKE ? ESCAPE '\'`, `SELECT id FROM r WHERE name ILIKE $1 ESCAPE '\'`},
		{"SELECT id FROM r WHERE a = ?\n\tOR (name\nLIKE ?)", "SELECT id FROM r WHERE a = $1\n\tOR (name\nILIKE $2)"},
		// a name that merely contains the words is left alone
		{`SELECT unlike, my_json_each FROM t WHERE a = 'LIKE ?'`, `SELECT unlike, my_json_each FROM t WHERE a = 'LIKE ?'`},
		{`SELECT x FROM my_json_each(?)`, `SELECT x FROM my_json_each($1)`},
		{`SELECT id FROM t ORDER BY entity COLLATE BINARY, id collate binary`, `SELECT id FROM t ORDER BY entity COLLATE "C", id COLLATE "C"`},
	}
	for _, c := range cases {
		if got := schema.Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestOpenStoreRefusesAnUnknownURL(t *testing.T) {
	_, err := schema.OpenStore(context.Background(), t.TempDir(), "mysql://somewhere/db")
	if err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("a mysql URL: %v, want a refusal naming postgres://", err)
	}
}

// Instances that start together migrate the database once, and a second opening finds it
// at the binary's version.
func TestPostgresMigratesOnceUnderConcurrentStarts(t *testing.T) {
	if !testpg.On() {
		t.Skip("set " + testpg.Env + " (bash .ci/postgres) to run against PostgreSQL")
	}
	dir := t.TempDir()
	url := testpg.For(t, dir)
	ctx := context.Background()
	errs := make(chan error, 3)
	dbs := make(chan *schema.DB, 3)
	for range 3 {
		go func() {
			db, err := schema.OpenStore(ctx, dir, url)
			errs <- err
			dbs <- db
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		db := <-dbs
		defer db.Close()
	}
	migs, err := schema.PostgresMigrations()
	if err != nil {
		t.Fatal(err)
	}
	db, err := schema.OpenStore(ctx, dir, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, v int
	if err := db.R.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != len(migs) || v != len(migs) {
		t.Errorf("schema_migrations has %d rows up to version %d, want %d", n, v, len(migs))
	}
}
