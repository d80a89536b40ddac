package schema

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Moving a company from SQLite to PostgreSQL (fieldsync migrate-store): every table the
// two stores share is copied row by row, whatever its columns, as both stores' catalogs
// describe them; then the copy is verified by reading both stores again and comparing
// each table's row count and an order-independent digest of its rows, computed the same
// way on both sides. Nothing here names a table but engine_state, the one row the
// PostgreSQL migrations write themselves.

// seededTables hold rows the PostgreSQL migrations write (the write path's position,
// at zero): the copy replaces them, and they do not count as a target holding data.
var seededTables = []string{"engine_state"}

// storeTable is a table both stores hold, with the columns the copy writes.
type storeTable struct {
	name     string
	cols     []string // the target's stored columns (not generated), in its order
	identity []string // the target's identity columns: their sequences move past the copy
	always   bool     // an identity column is GENERATED ALWAYS: inserts override it
}

// TableCheck is what the verification found for one table.
type TableCheck struct {
	Table                      string
	SourceRows, TargetRows     int64
	SourceDigest, TargetDigest string
}

// Equal reports whether both stores hold the same rows.
func (c TableCheck) Equal() bool {
	return c.SourceRows == c.TargetRows && c.SourceDigest == c.TargetDigest
}

// MoveTables lists the tables a move from src (SQLite) to dst (PostgreSQL) copies, parents
// before the tables whose foreign keys name them, after checking that every table and
// column of src has its place in dst (the same binary's migrations made both).
func moveTables(ctx context.Context, src, dst *DB) ([]storeTable, error) {
	if src.Postgres || !dst.Postgres {
		return nil, fmt.Errorf("a move goes from SQLite to PostgreSQL")
	}
	srcTables, err := QueryStrings(ctx, src.R, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	dstTables, err := QueryStrings(ctx, dst.R, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY table_name`)
	if err != nil {
		return nil, err
	}
	var tables []storeTable
	for _, name := range srcTables {
		if !slices.Contains(dstTables, name) {
			return nil, fmt.Errorf("table %s of the SQLite store has no counterpart in PostgreSQL: is this fieldsync older than the data folder's?", name)
		}
		srcCols, err := QueryStrings(ctx, src.R, `SELECT name FROM pragma_table_xinfo(?) WHERE hidden = 0`, name)
		if err != nil {
			return nil, err
		}
		rows, err := dst.R.QueryContext(ctx, `SELECT column_name, is_generated, is_identity, COALESCE(identity_generation, '')
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`, name)
		if err != nil {
			return nil, err
		}
		t := storeTable{name: name}
		for rows.Next() {
			var col, generated, identity, generation string
			if err := rows.Scan(&col, &generated, &identity, &generation); err != nil {
				rows.Close()
				return nil, err
			}
			if generated != "NEVER" {
				continue
			}
			t.cols = append(t.cols, col)
			if identity == "YES" {
				t.identity = append(t.identity, col)
				t.always = t.always || generation == "ALWAYS"
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, c := range srcCols {
			if !slices.Contains(t.cols, c) {
				return nil, fmt.Errorf("column %s.%s of the SQLite store has no counterpart in PostgreSQL", name, c)
			}
		}
		for _, c := range t.cols {
			// rowid: SQLite's implicit row number is an explicit column in PostgreSQL.
			if !slices.Contains(srcCols, c) && c != "rowid" {
				return nil, fmt.Errorf("column %s.%s of PostgreSQL has no counterpart in the SQLite store", name, c)
			}
		}
		tables = append(tables, t)
	}
	// Parents first: a table is placed once every table its foreign keys name is.
	rows, err := dst.R.QueryContext(ctx, `SELECT cl.relname, p.relname FROM pg_constraint c
		JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class p ON p.oid = c.confrelid
		JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE c.contype = 'f' AND n.nspname = current_schema()`)
	if err != nil {
		return nil, err
	}
	parents := map[string][]string{}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			rows.Close()
			return nil, err
		}
		if child != parent {
			parents[child] = append(parents[child], parent)
		}
	}
	rows.Close()
	var ordered []storeTable
	placed := map[string]bool{}
	for len(ordered) < len(tables) {
		progress := false
		for _, t := range tables {
			if placed[t.name] {
				continue
			}
			ready := true
			for _, p := range parents[t.name] {
				ready = ready && (placed[p] || !slices.Contains(srcTables, p))
			}
			if ready {
				ordered = append(ordered, t)
				placed[t.name] = true
				progress = true
			}
		}
		if !progress {
			return nil, fmt.Errorf("the PostgreSQL tables' foreign keys form a cycle")
		}
	}
	return ordered, nil
}

// CopyStore copies every table of src (SQLite) into dst (PostgreSQL), from one snapshot of
// src, in batches inside one transaction of dst, and returns the rows copied per table
// (in copy order). It refuses, changing nothing, a dst that already holds data.
func CopyStore(ctx context.Context, src, dst *DB) ([]TableCheck, error) {
	tables, err := moveTables(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	rtx, err := src.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer rtx.Rollback()
	wtx, err := dst.W.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer wtx.Rollback()
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = quoteName(t.name)
	}
	// No server on dst writes while the copy runs (and none started before holds data).
	if _, err := wtx.ExecContext(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return nil, err
	}
	for _, t := range tables {
		if slices.Contains(seededTables, t.name) {
			continue
		}
		var n int64
		if err := wtx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteName(t.name)).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, fmt.Errorf("the PostgreSQL database already holds data (%d rows in %s): move a company into a new, empty database", n, t.name)
		}
	}
	var out []TableCheck
	for _, t := range tables {
		if _, err := wtx.ExecContext(ctx, `DELETE FROM `+quoteName(t.name)); err != nil {
			return nil, err
		}
		n, err := copyTable(ctx, rtx, wtx, t)
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", t.name, err)
		}
		for _, col := range t.identity {
			if _, err := wtx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence(?, ?), (SELECT COALESCE(MAX(`+quoteName(col)+`), 0) + 1 FROM `+quoteName(t.name)+`), false)`,
				t.name, col); err != nil {
				return nil, fmt.Errorf("copy %s: move the sequence of %s: %w", t.name, col, err)
			}
		}
		out = append(out, TableCheck{Table: t.name, SourceRows: n, TargetRows: n})
	}
	if err := wtx.Commit(); err != nil {
		return nil, err
	}
	return out, nil
}

// copyTable copies one table in multi-row INSERTs of up to 500 rows (and 30,000 values).
func copyTable(ctx context.Context, rtx, wtx *sql.Tx, t storeTable) (int64, error) {
	cols := make([]string, len(t.cols))
	for i, c := range t.cols {
		cols[i] = quoteName(c)
	}
	rows, err := rtx.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+quoteName(t.name))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	head := `INSERT INTO ` + quoteName(t.name) + ` (` + strings.Join(cols, ", ") + `)`
	if t.always {
		head += ` OVERRIDING SYSTEM VALUE`
	}
	head += ` VALUES `
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	per := min(500, max(1, 30000/len(cols)))
	var args []any
	var total int64
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		n := len(args) / len(cols)
		q := head + strings.TrimSuffix(strings.Repeat(one+", ", n), ", ")
		if _, err := wtx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		total += int64(n)
		args = args[:0]
		return nil
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		args = append(args, vals...)
		if len(args) >= per*len(cols) {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return total, flush()
}

// VerifyStore compares every table of src (SQLite) with dst (PostgreSQL), each read in one
// snapshot: row count and digest. It returns every table's check, and an error naming the
// tables that differ.
func VerifyStore(ctx context.Context, src, dst *DB) ([]TableCheck, error) {
	tables, err := moveTables(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	rtx, err := src.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer rtx.Rollback()
	dtx, err := dst.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer dtx.Rollback()
	var out []TableCheck
	var differ []string
	for _, t := range tables {
		c := TableCheck{Table: t.name}
		if c.SourceRows, c.SourceDigest, err = tableDigest(ctx, rtx, t); err != nil {
			return nil, fmt.Errorf("verify %s in SQLite: %w", t.name, err)
		}
		if c.TargetRows, c.TargetDigest, err = tableDigest(ctx, dtx, t); err != nil {
			return nil, fmt.Errorf("verify %s in PostgreSQL: %w", t.name, err)
		}
		if !c.Equal() {
			differ = append(differ, fmt.Sprintf("%s (SQLite %d rows, digest %s; PostgreSQL %d rows, digest %s)",
				t.name, c.SourceRows, c.SourceDigest[:12], c.TargetRows, c.TargetDigest[:12]))
		}
		out = append(out, c)
	}
	if len(differ) > 0 {
		return out, fmt.Errorf("the PostgreSQL copy differs from the SQLite store in %s", strings.Join(differ, "; "))
	}
	return out, nil
}

// tableDigest counts a table's rows and sums a SHA-256 of each (its values in the column
// order of t, each written with its kind: NULL, integer, real or text), as four 64-bit
// lanes: the sum does not depend on the order rows are read in, and a row held twice
// counts twice.
func tableDigest(ctx context.Context, tx *sql.Tx, t storeTable) (int64, string, error) {
	cols := make([]string, len(t.cols))
	for i, c := range t.cols {
		cols[i] = quoteName(c)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+quoteName(t.name))
	if err != nil {
		return 0, "", err
	}
	defer rows.Close()
	var n int64
	var lanes [4]uint64
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var buf []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, "", err
		}
		buf = buf[:0]
		for _, v := range vals {
			buf = appendValue(buf, v)
		}
		sum := sha256.Sum256(buf)
		for i := range lanes {
			lanes[i] += binary.LittleEndian.Uint64(sum[8*i:])
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, "", err
	}
	var d [32]byte
	for i, l := range lanes {
		binary.LittleEndian.PutUint64(d[8*i:], l)
	}
	return n, hex.EncodeToString(d[:]), nil
}

// appendValue writes one value the same way whichever store and driver read it.
func appendValue(b []byte, v any) []byte {
	text := func(s string) []byte {
		b = append(b, 's')
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		return append(b, s...)
	}
	switch v := v.(type) {
	case nil:
		return append(b, 'n')
	case int64:
		b = append(b, 'i')
		return append(strconv.AppendInt(b, v, 10), ';')
	case float64:
		b = append(b, 'f')
		return append(strconv.AppendFloat(b, v, 'g', -1, 64), ';')
	case bool:
		if v {
			return append(b, "i1;"...)
		}
		return append(b, "i0;"...)
	case string:
		return text(v)
	case []byte:
		return text(string(v))
	case time.Time:
		return text(v.UTC().Format(time.RFC3339Nano))
	default:
		return text(fmt.Sprintf("%T:%v", v, v))
	}
}

// QueryStrings runs a query whose one column is text and returns its values in order.
func QueryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// quoteName quotes a table or column name for either engine.
func quoteName(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
