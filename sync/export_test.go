package sync

// Hooks for the tests of package sync_test that reach behind a BlobStore, whichever backend
// it has: what a person with access to the files or the database could do.

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"time"

	"fieldsync/schema"
)

// ReplaceBlob overwrites the content of the whole blob sum behind the store's back.
func ReplaceBlob(s *BlobStore, sum string, content []byte) error {
	switch b := s.b.(type) {
	case *blobFiles:
		p := b.finalPath(sum)
		if err := os.WriteFile(p, content, 0o640); err != nil {
			return err
		}
		later := time.Now().Add(time.Hour) // a new modification time, whatever the clock's grain
		return os.Chtimes(p, later, later)
	case *blobRows:
		tx, err := b.db.Begin()
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.Exec(`DELETE FROM blob_chunks WHERE hash = ?`, sum); err != nil {
			return err
		}
		for n := 0; n*blobChunk < len(content); n++ {
			if _, err := tx.Exec(`INSERT INTO blob_chunks (hash, n, data) VALUES (?, ?, ?)`, sum, n, content[n*blobChunk:min(len(content), (n+1)*blobChunk)]); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(`UPDATE blobs SET held = ? WHERE hash = ?`, len(content), sum); err != nil {
			return err
		}
		return tx.Commit()
	}
	panic("unknown blob backend")
}

// PartialTraces names whatever the store keeps of unfinished uploads.
func PartialTraces(s *BlobStore) ([]string, error) {
	switch b := s.b.(type) {
	case *blobFiles:
		entries, err := os.ReadDir(filepath.Join(b.dir, "partial"))
		var names []string
		for _, e := range entries {
			names = append(names, "partial/"+e.Name())
		}
		return names, err
	case *blobRows:
		return queryStrings(b, `SELECT 'blobs ' || hash FROM blobs WHERE complete = 0
			UNION ALL SELECT 'blob_chunks ' || hash || ' ' || CAST(n AS text) FROM blob_chunks c
			WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = c.hash AND b.complete = 1)`)
	}
	panic("unknown blob backend")
}

// WholeSums lists the blobs held whole.
func WholeSums(s *BlobStore) ([]string, error) {
	switch b := s.b.(type) {
	case *blobFiles:
		entries, err := os.ReadDir(b.dir)
		var names []string
		for _, e := range entries {
			if e.Name() != "partial" {
				names = append(names, e.Name())
			}
		}
		return names, err
	case *blobRows:
		return queryStrings(b, `SELECT hash FROM blobs WHERE complete = 1`)
	}
	panic("unknown blob backend")
}

// PartialContent returns the bytes held of the unfinished upload of sum.
func PartialContent(s *BlobStore, sum string) ([]byte, error) {
	switch b := s.b.(type) {
	case *blobFiles:
		return os.ReadFile(b.partialPath(sum))
	case *blobRows:
		var data []byte
		err := b.db.QueryRow(`SELECT COALESCE(string_agg(data, CAST('' AS bytea) ORDER BY n), CAST('' AS bytea)) FROM blob_chunks WHERE hash = ?`, sum).Scan(&data)
		return data, err
	}
	panic("unknown blob backend")
}

// FlipPartialByte changes the first byte held of the unfinished upload of sum.
func FlipPartialByte(s *BlobStore, sum string) error {
	switch b := s.b.(type) {
	case *blobFiles:
		data, err := os.ReadFile(b.partialPath(sum))
		if err != nil {
			return err
		}
		data[0] ^= 1
		return os.WriteFile(b.partialPath(sum), data, 0o640)
	case *blobRows:
		_, err := b.db.Exec(`UPDATE blob_chunks SET data = set_byte(data, 0, get_byte(data, 0) # 1) WHERE hash = ? AND n = 0`, sum)
		return err
	}
	panic("unknown blob backend")
}

// AgeUpload makes the unfinished upload of sum look last touched at t.
func AgeUpload(s *BlobStore, sum string, t time.Time) error {
	switch b := s.b.(type) {
	case *blobFiles:
		for _, p := range []string{b.partialPath(sum), b.lengthPath(sum)} {
			if err := os.Chtimes(p, t, t); err != nil {
				return err
			}
		}
		return nil
	case *blobRows:
		_, err := b.db.Exec(`UPDATE blobs SET touched = ? WHERE hash = ?`, t, sum)
		return err
	}
	panic("unknown blob backend")
}

func queryStrings(b *blobRows, query string) ([]string, error) {
	out, err := schema.QueryStrings(context.Background(), b.db, query)
	sort.Strings(out)
	return out, err
}
