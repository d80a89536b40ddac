package sync

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// blobFiles keeps blobs as files in a folder of the data folder (SQLite's store): a whole
// blob is <dir>/<sum>; a partial upload is partial/<sum> with its declared length and owner in
// partial/<sum>.len. Only content whose hash and type were checked is renamed to <dir>/<sum>,
// so a crash never leaves a half file under a final name. One process owns the folder: the
// store's lock of a sum is the only lock a change needs.
type blobFiles struct{ dir string }

func openBlobFiles(dir string) (*blobFiles, error) {
	if err := os.MkdirAll(filepath.Join(dir, "partial"), 0o750); err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	return &blobFiles{dir: dir}, nil
}

func (b *blobFiles) finalPath(sum string) string   { return filepath.Join(b.dir, sum) }
func (b *blobFiles) partialPath(sum string) string { return filepath.Join(b.dir, "partial", sum) }
func (b *blobFiles) lengthPath(sum string) string {
	return filepath.Join(b.dir, "partial", sum+".len")
}

func (b *blobFiles) close() error { return nil }

func (b *blobFiles) stat(sum string) (bool, int64, error) {
	size, whole, err := blobFileSize(b.finalPath(sum))
	if err != nil || whole {
		return whole, size, err
	}
	held, _, err := blobFileSize(b.partialPath(sum))
	return false, held, err
}

func (b *blobFiles) begin(sum string) (blobChange, error) { return &blobFileChange{b, sum}, nil }

func (b *blobFiles) open(sum string) (io.ReadSeekCloser, int64, error) {
	f, err := os.Open(b.finalPath(sum))
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func (b *blobFiles) stamp(sum string) (string, error) {
	fi, err := os.Stat(b.finalPath(sum))
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(fi.Size(), 10) + " " + fi.ModTime().Format(time.RFC3339Nano), nil
}

func (b *blobFiles) unfinished() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(b.dir, "partial"))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var sums []string
	for _, e := range entries {
		sum, _, _ := strings.Cut(e.Name(), ".")
		if checkBlobSum(sum) == nil && !seen[sum] {
			seen[sum] = true
			sums = append(sums, sum)
		}
	}
	return sums, nil
}

// blobFileChange is a change to the files of one sum.
type blobFileChange struct {
	b   *blobFiles
	sum string
}

func (c *blobFileChange) close() error               { return nil }
func (c *blobFileChange) held() (bool, int64, error) { return c.b.stat(c.sum) }

// length reads the length file: the length on its first line and the owner, quoted, on the
// second (absent in files written before owners were kept: no owner).
func (c *blobFileChange) length() (int64, string, bool, error) {
	p := c.b.lengthPath(c.sum)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, err
	}
	first, rest, _ := strings.Cut(string(data), "\n")
	n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil {
		return 0, "", false, fmt.Errorf("declared length file %s: %w", p, err)
	}
	owner, _ := strconv.Unquote(strings.TrimSpace(rest))
	return n, owner, true, nil
}

// setLength writes the length file through a temporary file and a rename so that a crash
// leaves the old value or the new one, never a torn number.
func (c *blobFileChange) setLength(n int64, owner string) error {
	tmp := c.b.lengthPath(c.sum) + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%d\n%s\n", n, strconv.Quote(owner))
	if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("writing declared length: %w", err)
	}
	if err := os.Rename(tmp, c.b.lengthPath(c.sum)); err != nil {
		return err
	}
	return syncBlobDir(filepath.Join(c.b.dir, "partial"))
}

func (c *blobFileChange) ownerBytes(owner string) (int64, error) {
	entries, err := os.ReadDir(filepath.Join(c.b.dir, "partial"))
	if err != nil {
		return 0, err
	}
	var used int64
	for _, e := range entries {
		sum, ok := strings.CutSuffix(e.Name(), ".len")
		if !ok || sum == c.sum || checkBlobSum(sum) != nil {
			continue
		}
		n, o, known, err := (&blobFileChange{c.b, sum}).length()
		if err != nil || !known || o != owner {
			continue // a damaged or vanished length file counts for nobody
		}
		used += n
	}
	return used, nil
}

func (c *blobFileChange) write(held int64, r io.Reader) (int64, error) {
	f, err := os.OpenFile(c.b.partialPath(c.sum), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	// Sync every chunk so the offset Stat reports after a crash is bytes really on disk.
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return 0, err
	}
	if held == 0 {
		if err := syncBlobDir(filepath.Join(c.b.dir, "partial")); err != nil {
			return n, err
		}
	}
	return n, err
}

func (c *blobFileChange) truncate(n int64) error { return os.Truncate(c.b.partialPath(c.sum), n) }

func (c *blobFileChange) partial() (io.ReadCloser, error) { return os.Open(c.b.partialPath(c.sum)) }

func (c *blobFileChange) complete(int64) error {
	if err := os.Rename(c.b.partialPath(c.sum), c.b.finalPath(c.sum)); err != nil {
		return err
	}
	if err := syncBlobDir(c.b.dir); err != nil {
		return err
	}
	if err := os.Remove(c.b.lengthPath(c.sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// discard deletes the partial upload and its declared length. A failure is ignored: the
// caller is already reporting why the upload ended, and a leftover partial only makes the
// next attempt fail the same check and try to delete it again.
func (c *blobFileChange) discard() {
	os.Remove(c.b.partialPath(c.sum))
	os.Remove(c.b.lengthPath(c.sum))
	os.Remove(c.b.lengthPath(c.sum) + ".tmp")
}

// touched is the latest modification time among the files of the upload.
func (c *blobFileChange) touched() (time.Time, error) {
	var last time.Time
	for _, p := range []string{c.b.partialPath(c.sum), c.b.lengthPath(c.sum), c.b.lengthPath(c.sum) + ".tmp"} {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return last, nil
}

// blobFileSize returns the size of the file at path, and false if there is none.
func blobFileSize(path string) (int64, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("blob store: %w", err)
	}
	return fi.Size(), true, nil
}

// syncBlobDir fsyncs the directory dir so that a rename or a new file in it survives a crash.
func syncBlobDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return fmt.Errorf("blob store: syncing %s: %w", dir, err)
	}
	return nil
}
