package sync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"time"

	"fieldsync/schema"
)

// blobChunk is the size of a row of blob_chunks: chunk n holds bytes n*blobChunk onwards.
const blobChunk = 256 << 10

// Advisory lock classes (the first key of pg_advisory_xact_lock(int, int)): a change to a
// blob, and the start of an upload counted against an owner's quota.
const (
	blobLockSum   = 0x626c6f62 // "blob"
	blobLockQuota = 0x71756f74 // "quot"
)

// blobRows keeps blobs in the PostgreSQL database (migration 0002_blobs.sql), reachable
// from every instance: one row of blobs per blob or partial upload, its bytes in rows of
// blob_chunks. A change to a sum is one transaction holding an advisory lock on the sum, so
// that two instances never append to the same upload at once and a crash mid-chunk keeps
// nothing of that chunk. Only a row with complete = 1 is read by stat's whole, open and
// stamp. It has its own pool, so that uploads never wait for the engine's writer.
type blobRows struct{ db *sql.DB }

// blobPoolSize is how many connections one instance's blob store opens at most.
const blobPoolSize = 8

func openBlobRows(db *schema.DB) (*blobRows, error) {
	p, err := db.Pool(blobPoolSize)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return &blobRows{db: p}, nil
}

func (b *blobRows) close() error { return b.db.Close() }

// lockKey turns a sum or an owner into the second key of an advisory lock.
func lockKey(s string) int64 {
	var h uint32 = 2166136261 // FNV-1a
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return int64(int32(h))
}

func (b *blobRows) stat(sum string) (bool, int64, error) {
	return blobRowStat(b.db, sum)
}

type blobQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func blobRowStat(q blobQuerier, sum string) (bool, int64, error) {
	var complete, held int64
	err := q.QueryRowContext(context.Background(), `SELECT complete, held FROM blobs WHERE hash = ?`, sum).Scan(&complete, &held)
	if errors.Is(err, sql.ErrNoRows) {
		return false, 0, nil
	}
	return complete == 1, held, err
}

func (b *blobRows) begin(sum string) (blobChange, error) {
	ctx := context.Background()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(CAST(? AS integer), CAST(? AS integer))`, blobLockSum, lockKey(sum)); err != nil {
		tx.Rollback()
		return nil, err
	}
	return &blobRowChange{tx: tx, sum: sum}, nil
}

func (b *blobRows) open(sum string) (io.ReadSeekCloser, int64, error) {
	var size int64
	err := b.db.QueryRow(`SELECT held FROM blobs WHERE hash = ? AND complete = 1`, sum).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fs.ErrNotExist
	}
	if err != nil {
		return nil, 0, err
	}
	return &blobChunkReader{q: b.db, sum: sum, size: size}, size, nil
}

// stamp lists the row versions (xmin) of the blob's chunks: any change to a chunk, or a
// chunk deleted and written again, changes it.
func (b *blobRows) stamp(sum string) (string, error) {
	var held int64
	var versions sql.NullString
	err := b.db.QueryRow(`SELECT b.held, (SELECT string_agg(CAST(c.xmin AS text) || '/' || CAST(c.n AS text), ',' ORDER BY c.n)
		FROM blob_chunks c WHERE c.hash = b.hash) FROM blobs b WHERE b.hash = ? AND b.complete = 1`, sum).Scan(&held, &versions)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fs.ErrNotExist
	}
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(held, 10) + " " + versions.String, nil
}

func (b *blobRows) unfinished() ([]string, error) {
	rows, err := b.db.Query(`SELECT hash FROM blobs WHERE complete = 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var sums []string
	for rows.Next() {
		var sum string
		if err := rows.Scan(&sum); err != nil {
			return nil, err
		}
		sums = append(sums, sum)
	}
	return sums, rows.Err()
}

// blobRowChange is a change to one sum: a transaction holding the sum's advisory lock.
type blobRowChange struct {
	tx  *sql.Tx
	sum string
}

func (c *blobRowChange) exec(query string, args ...any) error {
	_, err := c.tx.ExecContext(context.Background(), query, args...)
	return err
}

func (c *blobRowChange) close() error { return c.tx.Commit() }

func (c *blobRowChange) held() (bool, int64, error) { return blobRowStat(c.tx, c.sum) }

func (c *blobRowChange) length() (int64, string, bool, error) {
	var n int64
	var owner string
	err := c.tx.QueryRow(`SELECT declared, owner FROM blobs WHERE hash = ? AND complete = 0`, c.sum).Scan(&n, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	return n, owner, err == nil, err
}

func (c *blobRowChange) setLength(n int64, owner string) error {
	return c.exec(`INSERT INTO blobs (hash, declared, owner, touched) VALUES (?, ?, ?, now())
		ON CONFLICT (hash) DO UPDATE SET declared = excluded.declared, owner = excluded.owner, touched = now()`, c.sum, n, owner)
}

// ownerBytes locks owner's quota until the change ends, so that two instances starting
// uploads of one device at once both count the other's.
func (c *blobRowChange) ownerBytes(owner string) (int64, error) {
	if err := c.exec(`SELECT pg_advisory_xact_lock(CAST(? AS integer), CAST(? AS integer))`, blobLockQuota, lockKey(owner)); err != nil {
		return 0, err
	}
	var used int64
	err := c.tx.QueryRow(`SELECT COALESCE(SUM(declared), 0) FROM blobs WHERE owner = ? AND complete = 0 AND hash <> ?`, owner, c.sum).Scan(&used)
	return used, err
}

func (c *blobRowChange) write(held int64, r io.Reader) (int64, error) {
	buf := make([]byte, blobChunk)
	pos := held
	var rerr error
	for rerr == nil {
		off := pos % blobChunk
		k, err := io.ReadFull(r, buf[:blobChunk-off])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
			if k < int(blobChunk-off) {
				rerr = io.EOF
			}
		}
		if err != nil {
			rerr = err
		}
		if k == 0 {
			break
		}
		if off == 0 {
			err = c.exec(`INSERT INTO blob_chunks (hash, n, data) VALUES (?, ?, ?)
				ON CONFLICT (hash, n) DO UPDATE SET data = excluded.data`, c.sum, pos/blobChunk, buf[:k])
		} else {
			err = c.exec(`UPDATE blob_chunks SET data = data || ? WHERE hash = ? AND n = ?`, buf[:k], c.sum, pos/blobChunk)
		}
		if err != nil {
			return pos - held, err
		}
		pos += int64(k)
	}
	if err := c.exec(`UPDATE blobs SET held = ?, touched = now() WHERE hash = ?`, pos, c.sum); err != nil {
		return 0, err
	}
	if rerr == io.EOF {
		rerr = nil
	}
	return pos - held, rerr
}

func (c *blobRowChange) truncate(n int64) error {
	last := n / blobChunk
	err := c.exec(`DELETE FROM blob_chunks WHERE hash = ? AND n > ?`, c.sum, last)
	if err == nil && n%blobChunk == 0 {
		err = c.exec(`DELETE FROM blob_chunks WHERE hash = ? AND n = ?`, c.sum, last)
	} else if err == nil {
		err = c.exec(`UPDATE blob_chunks SET data = substring(data FROM 1 FOR ?) WHERE hash = ? AND n = ?`, n%blobChunk, c.sum, last)
	}
	if err != nil {
		return err
	}
	return c.exec(`UPDATE blobs SET held = ? WHERE hash = ?`, n, c.sum)
}

func (c *blobRowChange) partial() (io.ReadCloser, error) {
	_, held, err := c.held()
	if err != nil {
		return nil, err
	}
	return &blobChunkReader{q: c.tx, sum: c.sum, size: held}, nil
}

func (c *blobRowChange) complete(size int64) error {
	return c.exec(`UPDATE blobs SET complete = 1, held = ?, owner = '', touched = now() WHERE hash = ?`, size, c.sum)
}

// discard deletes the partial upload. A failure ends the transaction and close reports it;
// the upload is then still there, as with a file that could not be removed.
func (c *blobRowChange) discard() {
	c.exec(`DELETE FROM blob_chunks WHERE hash = ?`, c.sum)
	c.exec(`DELETE FROM blobs WHERE hash = ? AND complete = 0`, c.sum)
}

func (c *blobRowChange) touched() (time.Time, error) {
	var t time.Time
	err := c.tx.QueryRow(`SELECT touched FROM blobs WHERE hash = ?`, c.sum).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	return t, err
}

// blobChunkReader reads size bytes of the chunks of sum, one chunk in memory at a time.
type blobChunkReader struct {
	q    blobQuerier
	sum  string
	size int64
	pos  int64
	n    int64 // the chunk in cur
	cur  []byte
}

func (r *blobChunkReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n := r.pos / blobChunk
	if r.cur == nil || r.n != n {
		r.cur = nil
		err := r.q.QueryRowContext(context.Background(), `SELECT data FROM blob_chunks WHERE hash = ? AND n = ?`, r.sum, n).Scan(&r.cur)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("chunk %d of %d bytes is missing: %w", n, r.size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, err
		}
		r.n = n
	}
	off := r.pos % blobChunk
	if off >= int64(len(r.cur)) {
		return 0, fmt.Errorf("chunk %d holds %d bytes, short of offset %d: %w", n, len(r.cur), r.pos, io.ErrUnexpectedEOF)
	}
	k := copy(p, r.cur[off:min(int64(len(r.cur)), off+r.size-r.pos)])
	r.pos += int64(k)
	return k, nil
}

func (r *blobChunkReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return r.pos, errors.New("seek before the start")
	}
	r.pos = offset
	return offset, nil
}

func (r *blobChunkReader) Close() error { r.cur = nil; return nil }
