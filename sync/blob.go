package sync

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"golang.org/x/image/webp"

	"fieldsync/schema"
)

// blobSniffLen is how many leading bytes MediaType needs to recognise every accepted type
// (WebP's "RIFF....WEBP" is the longest).
const blobSniffLen = 12

// BlobStore keeps the files phones upload (signatures, stamp photos, photos) on disk, named
// by the lower-case hex SHA-256 of their content, so identical content is stored once and a
// mutation can name a blob before the server holds it.
//
// Uploads are resumable: a partial upload lives in partial/<sum> with its declared length and
// the device that began it in partial/<sum>.len, both surviving a restart. A device may hold
// at most PartialUploadsPerDevice times the size limit in unfinished uploads, and
// SweepPartial deletes those left untouched for PartialUploadMaxAge, so no device can fill
// the disk with uploads it never finishes. Only content whose hash and type were checked
// is renamed to <dir>/<sum>, so a crash never leaves a half file under a final name. One
// process owns the directory; within it, Appends for the same sum are serialised.
type BlobStore struct {
	dir      string
	maxBytes atomic.Int64
	hashed   atomic.Int64 // bytes read by Rehash
	stored   atomic.Int64 // bytes of blobs completed since the store was opened (for metrics)

	mu     gosync.Mutex         // guards locks and hashes
	quota  gosync.Mutex         // serialises the quota check and start of new uploads
	locks  map[string]*blobLock // one per sum being appended to
	hashes map[string]blobStamp // Rehash's results, by sum
}

// blobLock serialises the Appends of one sum; users counts who holds or waits for it so the
// map entry can be dropped when nobody does.
type blobLock struct {
	gosync.Mutex
	users int
}

// OpenBlobStore opens (creating if needed) the blob directory dir, refusing uploads whose
// total length is over maxBytes. A non-positive limit is refused here because it is always a
// configuration mistake at startup.
func OpenBlobStore(dir string, maxBytes int64) (*BlobStore, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("blob store %s: size limit %d must be positive", dir, maxBytes)
	}
	if err := os.MkdirAll(filepath.Join(dir, "partial"), 0o750); err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	s := &BlobStore{dir: dir, locks: make(map[string]*blobLock), hashes: make(map[string]blobStamp)}
	s.maxBytes.Store(maxBytes)
	return s, nil
}

// StoredBytes is how many bytes of blobs were completed since the store was opened.
func (s *BlobStore) StoredBytes() int64 { return s.stored.Load() }

// SetMaxBytes changes the size limit, because it is a setting a coordinator may change while
// the server runs. It applies to the next chunk, also of uploads already begun; n <= 0 refuses
// every upload.
func (s *BlobStore) SetMaxBytes(n int64) { s.maxBytes.Store(n) }

// Stat tells a client where to resume: (true, size) when the blob is held whole, (false, bytes
// held) for a partial upload, (false, 0) when the server has nothing of it. It takes no lock so
// that a HEAD never waits behind a slow upload; the offset may grow right after it is read.
func (s *BlobStore) Stat(sum string) (complete bool, offset int64, err error) {
	if err := checkBlobSum(sum); err != nil {
		return false, 0, err
	}
	size, whole, err := blobFileSize(s.finalPath(sum))
	if err != nil || whole {
		return whole, size, err
	}
	held, _, err := blobFileSize(s.partialPath(sum))
	return false, held, err
}

// Append adds the chunk read from r to the upload of sum, as a PATCH with Upload-Offset offset
// and Upload-Length length (-1 when the header was not sent; the first chunk must send it),
// from the device owner ("" for the server itself, which has no quota). It returns the bytes
// now held and whether the blob is now whole.
//
// Errors: CodeValidation for a bad sum (field sha256), a missing, empty or changed length or a
// chunk running past the declared length (field Upload-Length); CodeConflict when offset is not
// the bytes held, and then newOffset is the offset to resume at; CodeTooLarge when the length
// is over the limit, before any byte is read; CodeRateLimited when a new upload would take the
// owner's unfinished uploads past its quota, before any byte is read; CodeHashMismatch and CodeUnsupportedMedia when
// the content is wrong, and then the partial upload is deleted. A read error from r keeps the
// bytes that arrived, so the client resumes after them. After an error, newOffset is a hint
// (exact for CodeConflict); a client that needs certainty asks Stat. Appending to a blob held
// whole reads nothing and returns (size, true, nil).
func (s *BlobStore) Append(owner, sum string, offset int64, length int64, r io.Reader) (newOffset int64, complete bool, err error) {
	if err := checkBlobSum(sum); err != nil {
		return 0, false, err
	}
	unlock := s.lock(sum)
	defer unlock()

	size, whole, err := blobFileSize(s.finalPath(sum))
	if err != nil || whole {
		return size, whole, err
	}
	held, _, err := blobFileSize(s.partialPath(sum))
	if err != nil {
		return 0, false, err
	}
	if offset != held {
		return held, false, schema.Errorf(schema.CodeConflict,
			"blob %s: Upload-Offset %d does not match the %d bytes held; resume at offset %d", sum, offset, held, held)
	}
	declared, err := s.declaredLength(owner, sum, held, length)
	if err != nil {
		held, _, _ := blobFileSize(s.partialPath(sum)) // 0 if the upload was discarded
		return held, false, err
	}

	f, err := os.OpenFile(s.partialPath(sum), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return held, false, fmt.Errorf("blob %s: %w", sum, err)
	}
	n, readErr := io.Copy(f, io.LimitReader(r, declared-held))
	newOffset = held + n
	if readErr == nil && newOffset == declared && blobReaderHasMore(r) {
		// Refuse the whole chunk rather than keep part of it: the client has the wrong length.
		err := f.Truncate(held)
		f.Close()
		if err != nil {
			return held, false, fmt.Errorf("blob %s: dropping a chunk past the declared length: %w", sum, err)
		}
		return held, false, schema.FieldError(schema.CodeValidation, "Upload-Length",
			"blob %s: the chunk at offset %d runs past the declared Upload-Length %d", sum, held, declared)
	}
	// Sync every chunk so the offset Stat reports after a crash is bytes really on disk.
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return held, false, fmt.Errorf("blob %s: writing at offset %d: %w", sum, held, err)
	}
	if held == 0 {
		if err := syncBlobDir(filepath.Join(s.dir, "partial")); err != nil {
			return newOffset, false, err
		}
	}
	if readErr != nil {
		return newOffset, false, fmt.Errorf("blob %s: reading the chunk at offset %d (kept %d bytes): %w", sum, held, n, readErr)
	}

	if newOffset == declared {
		if err := s.finish(sum, declared); err != nil {
			return 0, false, err
		}
		return declared, true, nil
	}
	// Refuse a document or an archive as soon as its first bytes show it, not after the whole
	// upload.
	if held < blobSniffLen && newOffset >= blobSniffLen {
		if err := s.checkPartialMedia(sum); err != nil {
			return 0, false, err
		}
	}
	return newOffset, false, nil
}

// declaredLength settles the total length of the upload of sum, holding held bytes, given the
// Upload-Length of this chunk (-1 if absent), and persists it with the upload's owner so a
// restart keeps them. The length may change only while no byte is held, and a new length is
// checked against owner's quota.
func (s *BlobStore) declaredLength(owner, sum string, held, length int64) (int64, error) {
	switch {
	case length == 0:
		return 0, schema.FieldError(schema.CodeValidation, "Upload-Length", "blob %s: empty content is not accepted", sum)
	case length < -1:
		return 0, schema.FieldError(schema.CodeValidation, "Upload-Length", "blob %s: Upload-Length %d is negative", sum, length)
	}
	stored, storedOwner, known, err := s.readLength(sum)
	if err != nil {
		return 0, err
	}
	declared := stored
	switch {
	case length == -1 && !known:
		return 0, schema.FieldError(schema.CodeValidation, "Upload-Length",
			"blob %s: the first chunk must give Upload-Length", sum)
	case length != -1 && known && held > 0 && length != stored:
		return 0, schema.FieldError(schema.CodeValidation, "Upload-Length",
			"blob %s: Upload-Length %d differs from the %d declared when the upload began", sum, length, stored)
	case length != -1:
		declared = length
	}
	if limit := s.maxBytes.Load(); declared > limit {
		s.discard(sum) // it can never complete under this limit
		return 0, schema.FieldError(schema.CodeTooLarge, "Upload-Length",
			"blob %s: %d bytes is over the limit of %d bytes", sum, declared, limit)
	}
	if held > declared { // only a partial file whose length file was lost
		s.discard(sum)
		return 0, schema.Errorf(schema.CodeConflict,
			"blob %s: %d bytes held exceed Upload-Length %d; upload discarded, resume at offset 0", sum, held, declared)
	}
	if !known || declared != stored {
		if known {
			owner = storedOwner // the upload stays its first device's
		}
		if err := s.startUpload(owner, sum, declared); err != nil {
			return 0, err
		}
	}
	return declared, nil
}

// PartialUploadsPerDevice is how many uploads of the size limit (blob_max_bytes) one device
// may leave unfinished at once, in bytes declared: enough for every image of several sheets
// written offline.
const PartialUploadsPerDevice = 8

// PartialUploadMaxAge is how long an unfinished upload is kept after its last chunk. A device
// that comes back later starts that upload again from offset 0 (HEAD says so).
const PartialUploadMaxAge = 48 * time.Hour

// startUpload records the declared length and owner of the upload of sum, after checking
// that owner's unfinished uploads, this one included, stay within its quota.
func (s *BlobStore) startUpload(owner, sum string, declared int64) error {
	if owner == "" {
		return s.writeLength(sum, declared, owner)
	}
	s.quota.Lock()
	defer s.quota.Unlock()
	used, err := s.partialBytesOf(owner, sum)
	if err != nil {
		return err
	}
	if quota := PartialUploadsPerDevice * s.maxBytes.Load(); used+declared > quota {
		s.discard(sum)
		return schema.Errorf(schema.CodeRateLimited,
			"blob %s: device %q already has %d bytes of unfinished uploads; with these %d it would pass its %d: finish them first (unfinished uploads are deleted after %s)",
			sum, owner, used, declared, quota, PartialUploadMaxAge)
	}
	return s.writeLength(sum, declared, owner)
}

// partialBytesOf adds up the declared lengths of owner's unfinished uploads other than sum.
func (s *BlobStore) partialBytesOf(owner, except string) (int64, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "partial"))
	if err != nil {
		return 0, fmt.Errorf("blob store: %w", err)
	}
	var used int64
	for _, e := range entries {
		sum, ok := strings.CutSuffix(e.Name(), ".len")
		if !ok || sum == except || checkBlobSum(sum) != nil {
			continue
		}
		n, o, known, err := s.readLength(sum)
		if err != nil || !known || o != owner {
			continue // a damaged or vanished length file counts for nobody
		}
		used += n
	}
	return used, nil
}

// SweepPartial deletes the unfinished uploads whose last chunk is older than
// PartialUploadMaxAge at now, and returns how many it deleted. The server runs it hourly.
func (s *BlobStore) SweepPartial(now time.Time) (int, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "partial"))
	if err != nil {
		return 0, fmt.Errorf("blob store: %w", err)
	}
	sums := map[string]bool{}
	for _, e := range entries {
		sum, _, _ := strings.Cut(e.Name(), ".")
		if checkBlobSum(sum) == nil {
			sums[sum] = true
		}
	}
	removed := 0
	for sum := range sums {
		unlock := s.lock(sum)
		if s.partialLastTouched(sum).Before(now.Add(-PartialUploadMaxAge)) {
			s.discard(sum)
			removed++
		}
		unlock()
	}
	return removed, nil
}

// partialLastTouched is the latest modification time among the files of the upload of sum.
func (s *BlobStore) partialLastTouched(sum string) time.Time {
	var last time.Time
	for _, p := range []string{s.partialPath(sum), s.lengthPath(sum), s.lengthPath(sum) + ".tmp"} {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return last
}

// finish checks a partial upload that has all its bytes and moves it to its final name, or
// deletes it when its hash or type is wrong so that the client starts over.
func (s *BlobStore) finish(sum string, size int64) error {
	got, err := hashBlobFile(s.partialPath(sum))
	if err != nil {
		return err
	}
	if got != sum {
		s.discard(sum)
		return schema.FieldError(schema.CodeHashMismatch, "sha256",
			"blob %s: the %d bytes received hash to %s; upload discarded", sum, size, got)
	}
	if err := s.checkPartialImage(sum); err != nil {
		return err
	}
	if err := os.Rename(s.partialPath(sum), s.finalPath(sum)); err != nil {
		return fmt.Errorf("blob %s: %w", sum, err)
	}
	s.stored.Add(size)
	if err := syncBlobDir(s.dir); err != nil {
		return err
	}
	if err := os.Remove(s.lengthPath(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", sum, err)
	}
	return nil
}

// checkPartialMedia deletes the partial upload of sum and returns CodeUnsupportedMedia unless
// its first bytes are an accepted image type.
func (s *BlobStore) checkPartialMedia(sum string) error {
	head, err := readBlobHead(s.partialPath(sum))
	if err != nil {
		return err
	}
	if MediaType(head) == "" {
		s.discard(sum)
		return schema.FieldError(schema.CodeUnsupportedMedia, "sha256",
			"blob %s: content starting %q is not a PNG, JPEG or WebP image or a PDF; upload discarded", sum, head)
	}
	return nil
}

// MaxImagePixels bounds the width times height of an uploaded image, so that a small file
// declaring a huge picture cannot make the server allocate gigabytes to decode it. 25
// million pixels holds any phone camera's photo.
const MaxImagePixels = 25_000_000

// checkPartialImage decodes the whole partial upload of sum as the image its first bytes
// say it is, and deletes it and returns CodeUnsupportedMedia when that fails: a PNG header
// followed by HTML, a truncated file or an absurd size is refused here, before it can be
// sealed into a sheet whose PDF could then never be printed.
func (s *BlobStore) checkPartialImage(sum string) error {
	if err := s.checkPartialMedia(sum); err != nil {
		return err
	}
	data, err := os.ReadFile(s.partialPath(sum))
	if err != nil {
		return fmt.Errorf("blob %s: %w", sum, err)
	}
	if err := CheckImage(data); err != nil {
		s.discard(sum)
		return schema.FieldError(schema.CodeUnsupportedMedia, "sha256", "blob %s: %v; upload discarded", sum, err)
	}
	return nil
}

// CheckImage decodes data whole as a PNG, JPEG or WebP image, after checking that its
// declared size is at most MaxImagePixels.
func CheckImage(data []byte) error { return checkImage(data, MaxImagePixels) }

// checkImage is CheckImage with the pixel bound given (the fuzzer keeps it small, so that
// one input never decodes for seconds).
func checkImage(data []byte, maxPixels int64) error {
	var decodeConfig func(io.Reader) (image.Config, error)
	var decode func(io.Reader) (image.Image, error)
	switch MediaType(data) {
	case "application/pdf":
		return checkPDF(data)
	case "image/png":
		decodeConfig, decode = png.DecodeConfig, png.Decode
	case "image/jpeg":
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
	case "image/webp":
		decodeConfig, decode = webp.DecodeConfig, webp.Decode
	default:
		return errors.New("not a PNG, JPEG or WebP image")
	}
	name := strings.TrimPrefix(MediaType(data), "image/")
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not a whole %s image: %v", name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return fmt.Errorf("a %s image of %d x %d pixels is out of range (at most %d pixels)", name, cfg.Width, cfg.Height, maxPixels)
	}
	if _, err := decode(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("not a whole %s image: %v", name, err)
	}
	return nil
}

// checkPDF accepts a whole PDF file: its header, and the end-of-file marker in its last
// kilobyte (a truncated upload has none). The server never renders it; it is kept, hashed
// into the paper sheet's seal and handed back as a download.
func checkPDF(data []byte) error {
	tail := data[max(0, len(data)-1024):]
	if !bytes.Contains(tail, []byte("%%EOF")) {
		return errors.New("not a whole PDF file (no %%EOF at its end)")
	}
	return nil
}

// Open opens the whole blob sum for download, with its size and sniffed media type. It
// returns CodeNotFound while the blob is missing or only partly uploaded.
func (s *BlobStore) Open(sum string) (io.ReadSeekCloser, int64, string, error) {
	if err := checkBlobSum(sum); err != nil {
		return nil, 0, "", err
	}
	f, err := os.Open(s.finalPath(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, "", schema.Errorf(schema.CodeNotFound, "blob %s is not held whole", sum)
	}
	if err != nil {
		return nil, 0, "", fmt.Errorf("blob %s: %w", sum, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, "", fmt.Errorf("blob %s: %w", sum, err)
	}
	head := make([]byte, blobSniffLen)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, 0, "", fmt.Errorf("blob %s: %w", sum, err)
	}
	return f, fi.Size(), MediaType(head[:n]), nil
}

// Has reports whether the blob sum is held whole, which a mutation referencing it requires.
// An invalid sum is simply not held.
func (s *BlobStore) Has(sum string) bool {
	if checkBlobSum(sum) != nil {
		return false
	}
	fi, err := os.Stat(s.finalPath(sum))
	return err == nil && fi.Mode().IsRegular()
}

// Verify re-hashes the stored blob sum, so that sealing or checking a sheet can prove the
// signature it shows is the one uploaded. It returns CodeNotFound when the blob is not held
// whole and CodeHashMismatch when the file on disk has changed.
func (s *BlobStore) Verify(sum string) error {
	got, err := s.Rehash(sum)
	if err != nil {
		return err
	}
	if got != sum {
		return schema.FieldError(schema.CodeHashMismatch, "sha256", "blob %s: stored content now hashes to %s", sum, got)
	}
	return nil
}

// Rehash returns the SHA-256 of the content now stored under sum, which differs from sum
// only if the file was changed on disk. It returns CodeNotFound when the blob is not held
// whole.
func (s *BlobStore) Rehash(sum string) (string, error) {
	if err := checkBlobSum(sum); err != nil {
		return "", err
	}
	path := s.finalPath(sum)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", schema.Errorf(schema.CodeNotFound, "blob %s is not held whole", sum)
	}
	if err != nil {
		return "", fmt.Errorf("blob %s: %w", sum, err)
	}
	stamp := blobStamp{size: fi.Size(), mod: fi.ModTime()}
	s.mu.Lock()
	known, ok := s.hashes[sum]
	s.mu.Unlock()
	if ok && known.size == stamp.size && known.mod.Equal(stamp.mod) {
		return known.sum, nil
	}
	got, err := hashBlobFile(path)
	if err != nil {
		return "", err
	}
	s.hashed.Add(stamp.size)
	stamp.sum = got
	s.mu.Lock()
	if len(s.hashes) >= maxBlobHashes {
		clear(s.hashes) // bound the memory; the next checks hash again
	}
	s.hashes[sum] = stamp
	s.mu.Unlock()
	return got, nil
}

// maxBlobHashes bounds how many Rehash results the store remembers (about 150 bytes each).
const maxBlobHashes = 100_000

// blobStamp is what Rehash found a stored file to hash to, and the file's size and
// modification time then: while both are unchanged the content is taken as unchanged, so
// that a public verify request does not read megabytes of images each time.
type blobStamp struct {
	size int64
	mod  time.Time
	sum  string
}

// HashedBytes is how many bytes of stored blobs Rehash has read since the store opened.
func (s *BlobStore) HashedBytes() int64 { return s.hashed.Load() }

// MediaType names the type of content from its first bytes: "image/png", "image/jpeg" or
// "image/webp", the only types phones send, "application/pdf" (a paper sheet's scan), or ""
// for anything else. It looks at magic bytes,
// never at a header, because a client can claim any type.
func MediaType(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		return "image/jpeg"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "image/webp"
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return "application/pdf" // a paper sheet's scan; never taken for a signature or stamp
	}
	return ""
}

// lock takes the lock of sum and returns the function releasing it.
func (s *BlobStore) lock(sum string) (unlock func()) {
	s.mu.Lock()
	l := s.locks[sum]
	if l == nil {
		l = new(blobLock)
		s.locks[sum] = l
	}
	l.users++
	s.mu.Unlock()

	l.Lock()
	return func() {
		l.Unlock()
		s.mu.Lock()
		l.users--
		if l.users == 0 {
			delete(s.locks, sum)
		}
		s.mu.Unlock()
	}
}

func (s *BlobStore) finalPath(sum string) string   { return filepath.Join(s.dir, sum) }
func (s *BlobStore) partialPath(sum string) string { return filepath.Join(s.dir, "partial", sum) }
func (s *BlobStore) lengthPath(sum string) string {
	return filepath.Join(s.dir, "partial", sum+".len")
}

// readLength returns the declared length and the owner of the upload of sum, and false if
// none was stored. The file holds the length on its first line and the owner, quoted, on the
// second (absent in files written before owners were kept: no owner).
func (s *BlobStore) readLength(sum string) (int64, string, bool, error) {
	b, err := os.ReadFile(s.lengthPath(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("blob %s: %w", sum, err)
	}
	first, rest, _ := strings.Cut(string(b), "\n")
	n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil {
		return 0, "", false, fmt.Errorf("blob %s: declared length file %s: %w", sum, s.lengthPath(sum), err)
	}
	owner, _ := strconv.Unquote(strings.TrimSpace(rest))
	return n, owner, true, nil
}

// writeLength stores the declared length and owner of the upload of sum, through a temporary
// file and a rename so that a crash leaves the old value or the new one, never a torn number.
func (s *BlobStore) writeLength(sum string, n int64, owner string) error {
	tmp := s.lengthPath(sum) + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("blob %s: %w", sum, err)
	}
	_, err = fmt.Fprintf(f, "%d\n%s\n", n, strconv.Quote(owner))
	if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("blob %s: writing declared length: %w", sum, err)
	}
	if err := os.Rename(tmp, s.lengthPath(sum)); err != nil {
		return fmt.Errorf("blob %s: %w", sum, err)
	}
	return syncBlobDir(filepath.Join(s.dir, "partial"))
}

// discard deletes the partial upload of sum and its declared length. A failure is ignored:
// the caller is already reporting why the upload ended, and a leftover partial only makes the
// next attempt fail the same check and try to delete it again.
func (s *BlobStore) discard(sum string) {
	os.Remove(s.partialPath(sum))
	os.Remove(s.lengthPath(sum))
	os.Remove(s.lengthPath(sum) + ".tmp")
}

// checkBlobSum refuses anything but 64 lower-case hex digits, which also keeps a sum from
// naming a path outside the store.
func checkBlobSum(sum string) error {
	ok := len(sum) == 64
	for i := 0; ok && i < len(sum); i++ {
		c := sum[i]
		ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
	}
	if !ok {
		shown := sum
		if len(shown) > 80 {
			shown = shown[:80] + "..."
		}
		return schema.FieldError(schema.CodeValidation, "sha256", "%q is not a SHA-256: want 64 lower-case hex digits", shown)
	}
	return nil
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

// hashBlobFile returns the lower-case hex SHA-256 of the file at path.
func hashBlobFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("blob store: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("blob store: hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readBlobHead returns up to blobSniffLen first bytes of the file at path, for MediaType.
func readBlobHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	defer f.Close()
	head := make([]byte, blobSniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("blob store: reading %s: %w", path, err)
	}
	return head[:n], nil
}

// blobReaderHasMore reports whether r has at least one more byte, which after the declared
// length means the client sent too much.
func blobReaderHasMore(r io.Reader) bool {
	var one [1]byte
	n, _ := io.ReadFull(r, one[:])
	return n == 1
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
