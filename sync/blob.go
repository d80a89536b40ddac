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

// BlobStore keeps the files phones upload (signatures, stamp photos, photos) and the office's
// paper scans, named by the lower-case hex SHA-256 of their content, so identical content is
// stored once and a mutation can name a blob before the server holds it. Where the bytes live
// is its backend's business: files in the data folder on SQLite (blobFiles), rows of the
// database on PostgreSQL (blobRows), so that every instance reaches them. The rules below are
// the same for both.
//
// Uploads are resumable: a partial upload keeps its bytes, its declared length and the device
// that began it, all surviving a restart. A device may hold at most PartialUploadsPerDevice
// times the size limit in unfinished uploads, and SweepPartial deletes those left untouched
// for PartialUploadMaxAge, so no device can fill the store with uploads it never finishes.
// Only content whose hash and type were checked becomes whole, so a crash never leaves half a
// blob served. Appends for the same sum are serialised within the process and, on
// PostgreSQL, across instances.
type BlobStore struct {
	b        blobBackend
	maxBytes atomic.Int64
	hashed   atomic.Int64 // bytes read by Rehash
	stored   atomic.Int64 // bytes of blobs completed since the store was opened (for metrics)

	mu     gosync.Mutex         // guards locks and hashes
	quota  gosync.Mutex         // serialises the quota check and start of new uploads
	locks  map[string]*blobLock // one per sum being appended to
	hashes map[string]blobStamp // Rehash's results, by sum
}

// blobBackend is where a BlobStore keeps bytes. Missing blobs are reported as
// fs.ErrNotExist.
type blobBackend interface {
	// stat returns (true, size) for a whole blob, (false, bytes held) for a partial upload,
	// (false, 0) for nothing. It takes no lock.
	stat(sum string) (whole bool, n int64, err error)
	// begin starts a change to sum, under a lock that excludes other changes to sum
	// (across instances where there are several); close ends it.
	begin(sum string) (blobChange, error)
	// open opens a whole blob for reading, with its size.
	open(sum string) (io.ReadSeekCloser, int64, error)
	// stamp returns a value that changes whenever the content of the whole blob sum does.
	stamp(sum string) (string, error)
	// unfinished lists the sums of the partial uploads.
	unfinished() ([]string, error)
	close() error
}

// blobChange is one change to one sum, begun by blobBackend.begin. Its operations act on the
// partial upload of the sum.
type blobChange interface {
	// held is stat under the change's lock.
	held() (whole bool, n int64, err error)
	// length returns the declared length and owner, and false when none is stored.
	length() (declared int64, owner string, known bool, err error)
	setLength(declared int64, owner string) error
	// ownerBytes adds up the declared lengths of owner's partial uploads other than this
	// one; the caller holds the store's quota lock, and on PostgreSQL owner's quota stays
	// locked across instances until close.
	ownerBytes(owner string) (int64, error)
	// write appends everything r gives and returns how many bytes it kept, also when r
	// fails (the bytes read before the failure are kept); durable once close returns nil.
	write(held int64, r io.Reader) (int64, error)
	truncate(n int64) error
	// partial reads the bytes held, from the start.
	partial() (io.ReadCloser, error)
	// complete makes the partial upload the whole blob.
	complete(size int64) error
	// discard deletes the partial upload. A failure is ignored: the caller is already
	// reporting why the upload ended, and a leftover only makes the next attempt fail the
	// same check and discard it again.
	discard()
	// touched is when the partial upload last received a chunk.
	touched() (time.Time, error)
	// close ends the change, keeping what it did; it releases the lock.
	close() error
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
	b, err := openBlobFiles(dir)
	if err != nil {
		return nil, err
	}
	return newBlobStore(b, maxBytes), nil
}

// OpenBlobStoreIn opens the blob store that goes with the store db: the folder dir on
// SQLite (see OpenBlobStore), the database itself on PostgreSQL, so that every instance
// serves every blob. Close it after use.
func OpenBlobStoreIn(db *schema.DB, dir string, maxBytes int64) (*BlobStore, error) {
	if !db.Postgres {
		return OpenBlobStore(dir, maxBytes)
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("blob store: size limit %d must be positive", maxBytes)
	}
	b, err := openBlobRows(db)
	if err != nil {
		return nil, err
	}
	return newBlobStore(b, maxBytes), nil
}

func newBlobStore(b blobBackend, maxBytes int64) *BlobStore {
	s := &BlobStore{b: b, locks: make(map[string]*blobLock), hashes: make(map[string]blobStamp)}
	s.maxBytes.Store(maxBytes)
	return s
}

// Close releases what the store holds open (the database connections on PostgreSQL).
func (s *BlobStore) Close() error { return s.b.close() }

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
	return s.b.stat(sum)
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
	c, err := s.b.begin(sum)
	if err != nil {
		return offset, false, fmt.Errorf("blob %s: %w", sum, err)
	}
	newOffset, complete, err = s.append(c, owner, sum, offset, length, r)
	if cerr := c.close(); cerr != nil && err == nil {
		return offset, false, fmt.Errorf("blob %s: %w", sum, cerr)
	}
	return newOffset, complete, err
}

func (s *BlobStore) append(c blobChange, owner, sum string, offset int64, length int64, r io.Reader) (newOffset int64, complete bool, err error) {
	held, whole, err := blobHeld(c)
	if err != nil || whole {
		return held, whole, err
	}
	if offset != held {
		return held, false, schema.Errorf(schema.CodeConflict,
			"blob %s: Upload-Offset %d does not match the %d bytes held; resume at offset %d", sum, offset, held, held)
	}
	declared, err := s.declaredLength(c, owner, sum, held, length)
	if err != nil {
		held, _, _ := blobHeld(c) // 0 if the upload was discarded
		return held, false, err
	}

	er := &blobErrReader{r: io.LimitReader(r, declared-held)}
	n, werr := c.write(held, er)
	newOffset = held + n
	if werr != nil && er.err == nil {
		return held, false, fmt.Errorf("blob %s: writing at offset %d: %w", sum, held, werr)
	}
	if er.err == nil && newOffset == declared && blobReaderHasMore(r) {
		// Refuse the whole chunk rather than keep part of it: the client has the wrong length.
		if err := c.truncate(held); err != nil {
			return held, false, fmt.Errorf("blob %s: dropping a chunk past the declared length: %w", sum, err)
		}
		return held, false, schema.FieldError(schema.CodeValidation, "Upload-Length",
			"blob %s: the chunk at offset %d runs past the declared Upload-Length %d", sum, held, declared)
	}
	if er.err != nil {
		return newOffset, false, fmt.Errorf("blob %s: reading the chunk at offset %d (kept %d bytes): %w", sum, held, n, er.err)
	}

	if newOffset == declared {
		if err := s.finish(c, sum, declared); err != nil {
			return 0, false, err
		}
		return declared, true, nil
	}
	// Refuse a document or an archive as soon as its first bytes show it, not after the whole
	// upload.
	if held < blobSniffLen && newOffset >= blobSniffLen {
		if err := s.checkPartialMedia(c, sum); err != nil {
			return 0, false, err
		}
	}
	return newOffset, false, nil
}

// blobHeld is blobChange.held with the bytes first, as Append returns them.
func blobHeld(c blobChange) (int64, bool, error) {
	whole, n, err := c.held()
	return n, whole, err
}

// blobErrReader remembers the error its reader returned, so that a failure to read the
// client's chunk is told apart from a failure to store it.
type blobErrReader struct {
	r   io.Reader
	err error
}

func (e *blobErrReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// declaredLength settles the total length of the upload of sum, holding held bytes, given the
// Upload-Length of this chunk (-1 if absent), and persists it with the upload's owner so a
// restart keeps them. The length may change only while no byte is held, and a new length is
// checked against owner's quota.
func (s *BlobStore) declaredLength(c blobChange, owner, sum string, held, length int64) (int64, error) {
	switch {
	case length == 0:
		return 0, schema.FieldError(schema.CodeValidation, "Upload-Length", "blob %s: empty content is not accepted", sum)
	case length < -1:
		return 0, schema.FieldError(schema.CodeValidation, "Upload-Length", "blob %s: Upload-Length %d is negative", sum, length)
	}
	stored, storedOwner, known, err := c.length()
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", sum, err)
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
		c.discard() // it can never complete under this limit
		return 0, schema.FieldError(schema.CodeTooLarge, "Upload-Length",
			"blob %s: %d bytes is over the limit of %d bytes", sum, declared, limit)
	}
	if held > declared { // only a partial file whose length file was lost
		c.discard()
		return 0, schema.Errorf(schema.CodeConflict,
			"blob %s: %d bytes held exceed Upload-Length %d; upload discarded, resume at offset 0", sum, held, declared)
	}
	if !known || declared != stored {
		if known {
			owner = storedOwner // the upload stays its first device's
		}
		if err := s.startUpload(c, owner, sum, declared); err != nil {
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
func (s *BlobStore) startUpload(c blobChange, owner, sum string, declared int64) error {
	if owner == "" {
		return wrapBlob(sum, c.setLength(declared, owner))
	}
	s.quota.Lock()
	defer s.quota.Unlock()
	used, err := c.ownerBytes(owner)
	if err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	if quota := PartialUploadsPerDevice * s.maxBytes.Load(); used+declared > quota {
		c.discard()
		return schema.Errorf(schema.CodeRateLimited,
			"blob %s: device %q already has %d bytes of unfinished uploads; with these %d it would pass its %d: finish them first (unfinished uploads are deleted after %s)",
			sum, owner, used, declared, quota, PartialUploadMaxAge)
	}
	return wrapBlob(sum, c.setLength(declared, owner))
}

func wrapBlob(sum string, err error) error {
	if err != nil {
		return fmt.Errorf("blob %s: %w", sum, err)
	}
	return nil
}

// SweepPartial deletes the unfinished uploads whose last chunk is older than
// PartialUploadMaxAge at now, and returns how many it deleted. The server runs it hourly.
func (s *BlobStore) SweepPartial(now time.Time) (int, error) {
	sums, err := s.b.unfinished()
	if err != nil {
		return 0, fmt.Errorf("blob store: %w", err)
	}
	removed := 0
	for _, sum := range sums {
		unlock := s.lock(sum)
		c, err := s.b.begin(sum)
		if err != nil {
			unlock()
			return removed, fmt.Errorf("blob %s: %w", sum, err)
		}
		whole, _, herr := c.held()
		last, terr := c.touched()
		if herr == nil && terr == nil && !whole && last.Before(now.Add(-PartialUploadMaxAge)) {
			c.discard()
			removed++
		}
		err = c.close()
		unlock()
		if err != nil {
			return removed, fmt.Errorf("blob %s: %w", sum, err)
		}
	}
	return removed, nil
}

// finish checks a partial upload that has all its bytes and makes it whole, or deletes it
// when its hash or type is wrong so that the client starts over.
func (s *BlobStore) finish(c blobChange, sum string, size int64) error {
	r, err := c.partial()
	if err != nil {
		return wrapBlob(sum, err)
	}
	h := sha256.New()
	_, err = io.Copy(h, r)
	r.Close()
	if err != nil {
		return fmt.Errorf("blob %s: hashing: %w", sum, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		c.discard()
		return schema.FieldError(schema.CodeHashMismatch, "sha256",
			"blob %s: the %d bytes received hash to %s; upload discarded", sum, size, got)
	}
	if err := s.checkPartialImage(c, sum); err != nil {
		return err
	}
	if err := c.complete(size); err != nil {
		return wrapBlob(sum, err)
	}
	s.stored.Add(size)
	return nil
}

// checkPartialMedia deletes the partial upload of sum and returns CodeUnsupportedMedia unless
// its first bytes are an accepted image type.
func (s *BlobStore) checkPartialMedia(c blobChange, sum string) error {
	r, err := c.partial()
	if err != nil {
		return wrapBlob(sum, err)
	}
	head, err := readBlobHead(r)
	r.Close()
	if err != nil {
		return wrapBlob(sum, err)
	}
	if MediaType(head) == "" {
		c.discard()
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
func (s *BlobStore) checkPartialImage(c blobChange, sum string) error {
	if err := s.checkPartialMedia(c, sum); err != nil {
		return err
	}
	r, err := c.partial()
	if err != nil {
		return wrapBlob(sum, err)
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return wrapBlob(sum, err)
	}
	if err := CheckImage(data); err != nil {
		c.discard()
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
// returns CodeNotFound while the blob is missing or only partly uploaded. The content is
// read as it is sent, never held whole in memory.
func (s *BlobStore) Open(sum string) (io.ReadSeekCloser, int64, string, error) {
	if err := checkBlobSum(sum); err != nil {
		return nil, 0, "", err
	}
	r, size, err := s.b.open(sum)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, "", schema.Errorf(schema.CodeNotFound, "blob %s is not held whole", sum)
	}
	if err != nil {
		return nil, 0, "", fmt.Errorf("blob %s: %w", sum, err)
	}
	head, err := readBlobHead(r)
	if err == nil {
		_, err = r.Seek(0, io.SeekStart)
	}
	if err != nil {
		r.Close()
		return nil, 0, "", fmt.Errorf("blob %s: %w", sum, err)
	}
	return r, size, MediaType(head), nil
}

// Has reports whether the blob sum is held whole, which a mutation referencing it requires.
// An invalid sum is simply not held.
func (s *BlobStore) Has(sum string) bool {
	if checkBlobSum(sum) != nil {
		return false
	}
	whole, _, err := s.b.stat(sum)
	return err == nil && whole
}

// Verify re-hashes the stored blob sum, so that sealing or checking a sheet can prove the
// signature it shows is the one uploaded. It returns CodeNotFound when the blob is not held
// whole and CodeHashMismatch when the stored content has changed.
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
// only if the stored content was changed behind the store's back. It returns CodeNotFound
// when the blob is not held whole.
func (s *BlobStore) Rehash(sum string) (string, error) {
	if err := checkBlobSum(sum); err != nil {
		return "", err
	}
	stamp, err := s.b.stamp(sum)
	if errors.Is(err, fs.ErrNotExist) {
		return "", schema.Errorf(schema.CodeNotFound, "blob %s is not held whole", sum)
	}
	if err != nil {
		return "", fmt.Errorf("blob %s: %w", sum, err)
	}
	s.mu.Lock()
	known, ok := s.hashes[sum]
	s.mu.Unlock()
	if ok && known.stamp == stamp {
		return known.sum, nil
	}
	r, size, err := s.b.open(sum)
	if errors.Is(err, fs.ErrNotExist) {
		return "", schema.Errorf(schema.CodeNotFound, "blob %s is not held whole", sum)
	}
	if err != nil {
		return "", fmt.Errorf("blob %s: %w", sum, err)
	}
	h := sha256.New()
	_, err = io.Copy(h, r)
	r.Close()
	if err != nil {
		return "", fmt.Errorf("blob %s: hashing: %w", sum, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	s.hashed.Add(size)
	s.mu.Lock()
	if len(s.hashes) >= maxBlobHashes {
		clear(s.hashes) // bound the memory; the next checks hash again
	}
	s.hashes[sum] = blobStamp{stamp: stamp, sum: got}
	s.mu.Unlock()
	return got, nil
}

// maxBlobHashes bounds how many Rehash results the store remembers (about 150 bytes each).
const maxBlobHashes = 100_000

// blobStamp is what Rehash found a stored blob to hash to, and the backend's stamp of it
// then (a file's size and modification time, the row versions of a blob's chunks): while the
// stamp is unchanged the content is taken as unchanged, so that a public verify request does
// not read megabytes of images each time.
type blobStamp struct {
	stamp string
	sum   string
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

// checkBlobSum refuses anything but 64 lower-case hex digits, which also keeps a sum from
// naming a path outside the store.
// ValidBlobSum reports whether s names a blob: 64 lower-case hex digits.
func ValidBlobSum(s string) bool { return checkBlobSum(s) == nil }

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

// readBlobHead returns up to blobSniffLen first bytes of r, for MediaType.
func readBlobHead(r io.Reader) ([]byte, error) {
	head := make([]byte, blobSniffLen)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("reading: %w", err)
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
