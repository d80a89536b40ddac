package schema

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	gosync "sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mattn/go-sqlite3"
)

// fieldsync's SQL is written once, in the dialect SQLite and PostgreSQL share. The few
// places where they differ are translated here, on the way to PostgreSQL, by one rewrite
// of the statement's text (cached per statement):
//
//   - placeholders: ? becomes $1, $2, …;
//   - a boolean parameter is stored as 0 or 1, as SQLite stores it;
//   - LIKE becomes ILIKE: SQLite's LIKE ignores the case of ASCII letters;
//   - SQLite's index hints (INDEXED BY name) are dropped: PostgreSQL's planner chooses;
//   - json_each(?) (the elements of a JSON array given as a parameter) becomes
//     json_array_elements_text(CAST($n AS json)), whose column is also named value;
//   - COLLATE BINARY becomes COLLATE "C": an order the code compares with Go's byte order
//     (a verify digest's) must not follow the database's locale.
//
// Everything else the code needs, both engines read the same way (->> on JSON, ON CONFLICT,
// RETURNING, window functions, SAVEPOINT). Statements that only one engine has (SQLite's
// PRAGMAs and VACUUM INTO, PostgreSQL's FOR UPDATE and NOTIFY) are written apart, behind
// DB.Postgres.

// IsPostgresURL reports whether a --db value names a PostgreSQL database.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

var rebound gosync.Map // SQLite-dialect statement → PostgreSQL text

// Rebind returns query in PostgreSQL's dialect (see above). Quoted strings, quoted names
// and comments are left as they are.
func Rebind(query string) string {
	if v, ok := rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				b.WriteString(query[i:])
				i = len(query)
				continue
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i - 1
			}
			b.WriteString(query[i : i+j+1])
			i += j
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
		case (c == 'I' || c == 'i') && wordAt(query, i, "INDEXED BY "):
			// SQLite's index hint: PostgreSQL's planner chooses. Skip it and the index's name.
			j := i + len("INDEXED BY ")
			for j < len(query) && (query[j] == '_' || query[j] >= 'a' && query[j] <= 'z' || query[j] >= 'A' && query[j] <= 'Z' || query[j] >= '0' && query[j] <= '9') {
				j++
			}
			i = j - 1
		case (c == 'L' || c == 'l') && wordAt(query, i, "LIKE "):
			// SQLite's LIKE ignores the case of ASCII letters; PostgreSQL's does not.
			b.WriteString("ILIKE ")
			i += len("LIKE ") - 1
		case (c == 'C' || c == 'c') && wordAt(query, i, "COLLATE BINARY"):
			b.WriteString(`COLLATE "C"`)
			i += len("COLLATE BINARY") - 1
		case (c == 'j' || c == 'J') && wordAt(query, i, "json_each(?)"):
			n++
			b.WriteString("json_array_elements_text(CAST($" + strconv.Itoa(n) + " AS json))")
			i += len("json_each(?)") - 1
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	rebound.Store(query, out)
	return out
}

// wordAt reports whether query holds word at i, case aside, not as the end of a longer name.
func wordAt(query string, i int, word string) bool {
	if i > 0 {
		p := query[i-1]
		if p == '_' || p >= 'a' && p <= 'z' || p >= 'A' && p <= 'Z' || p >= '0' && p <= '9' {
			return false
		}
	}
	return len(query)-i >= len(word) && strings.EqualFold(query[i:i+len(word)], word)
}

// pgConn is a pgx connection that takes statements in fieldsync's dialect.
type pgConn struct{ *stdlib.Conn }

func (c pgConn) Prepare(query string) (driver.Stmt, error) { return c.Conn.Prepare(Rebind(query)) }
func (c pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, Rebind(query))
}
func (c pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, Rebind(query), args)
}
func (c pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, Rebind(query), args)
}

// CheckNamedValue stores Go booleans as 0 and 1, as SQLite does (the columns are integers).
func (c pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	if b, ok := nv.Value.(bool); ok {
		nv.Value = int64(0)
		if b {
			nv.Value = int64(1)
		}
	}
	return nil
}

type pgConnector struct{ driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return pgConn{conn.(*stdlib.Conn)}, nil
}

// openPostgres opens a pool on the database at url whose sessions take the given settings
// (for example default_transaction_isolation).
func openPostgres(url string, settings map[string]string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("--db %s: %w", redactURL(url), err)
	}
	for k, v := range settings {
		cfg.RuntimeParams[k] = v
	}
	return sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)}), nil
}

// redactURL hides the password of a database URL in messages.
func redactURL(u string) string {
	at := strings.LastIndexByte(u, '@')
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	userinfo := u[scheme+3 : at]
	if name, _, ok := strings.Cut(userinfo, ":"); ok {
		return u[:scheme+3] + name + ":***" + u[at:]
	}
	return u
}

// IsUniqueViolation reports whether err is a unique-constraint violation, in either engine.
func IsUniqueViolation(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Pool opens another pool of at most maxConns read-write connections on the PostgreSQL
// database of db, taking statements in fieldsync's dialect (the blob store's, whose uploads
// must not queue behind the engine's single writer). The caller closes it.
func (db *DB) Pool(maxConns int) (*sql.DB, error) {
	if !db.Postgres {
		return nil, errors.New("a pool of connections is for PostgreSQL only")
	}
	p, err := openPostgres(db.URL, nil)
	if err != nil {
		return nil, err
	}
	p.SetMaxOpenConns(maxConns)
	p.SetMaxIdleConns(maxConns)
	return p, nil
}
