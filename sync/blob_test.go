package sync_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldsync/internal/testpg"
	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// blobWebP is a complete 1x1 lossless WebP (one transparent pixel): the RIFF header, "WEBP",
// and a VP8L chunk of 13 bytes. It is the image Modernizr uses to detect lossless WebP
// support; golang.org/x/image/webp decodes it to a 1x1 image.
var blobWebP = []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")

// blobNoise returns a w x h image of random pixels, so that it does not compress and its PNG
// is about 4*w*h bytes.
func blobNoise(w, h int) *image.RGBA {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	return img
}

func blobPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, blobNoise(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func blobJPEG(t testing.TB) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	img.Set(3, 3, color.White)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func blobSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// newBlobStore opens a blob store of the store the tests run on (testpg): files in a fresh
// folder on SQLite, a fresh database on PostgreSQL. The function it returns opens another
// BlobStore on the same blobs, as a restart of the server or another instance would.
func newBlobStore(t testing.TB, maxBytes int64) (*syncer.BlobStore, func() *syncer.BlobStore) {
	t.Helper()
	dir := t.TempDir()
	url := testpg.For(t, dir)
	open := func() *syncer.BlobStore {
		t.Helper()
		db, err := schema.OpenStore(context.Background(), dir, url)
		if err != nil {
			t.Fatal(err)
		}
		s, err := syncer.OpenBlobStoreIn(db, filepath.Join(dir, "blobs"), maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); db.Close() })
		return s
	}
	return open(), open
}

// wantBlobError fails unless err is a *schema.Error with the code (and field, if given).
func wantBlobError(t testing.TB, err error, code, field string) *schema.Error {
	t.Helper()
	e, ok := schema.AsError(err)
	if !ok {
		t.Fatalf("error = %v, want a *schema.Error with code %s", err, code)
	}
	if e.Code != code || (field != "" && e.Field != field) {
		t.Fatalf("error = %v, want code %s field %q", err, code, field)
	}
	return e
}

// wantNothingHeld fails if the store holds any trace of sum, whole or partial.
func wantNothingHeld(t testing.TB, s *syncer.BlobStore, sum string) {
	t.Helper()
	complete, offset, err := s.Stat(sum)
	if err != nil || complete || offset != 0 {
		t.Errorf("Stat = (%v, %d, %v), want (false, 0, nil)", complete, offset, err)
	}
	if s.Has(sum) {
		t.Errorf("Has(%s) = true after a refused upload", sum)
	}
	traces, err := syncer.PartialTraces(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range traces {
		t.Errorf("%s left behind", name)
	}
}

// wantBlobContent fails unless Open returns exactly want with the media type.
func wantBlobContent(t testing.TB, s *syncer.BlobStore, sum string, want []byte, mediaType string) {
	t.Helper()
	rc, size, mt, err := s.Open(sum)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || size != int64(len(want)) || mt != mediaType {
		t.Fatalf("Open = %d bytes (equal: %v), size %d, %q; want %d bytes, %q",
			len(got), bytes.Equal(got, want), size, mt, len(want), mediaType)
	}
}

// blobCountingReader records whether anyone read from it.
type blobCountingReader struct {
	r     io.Reader
	reads int
}

func (c *blobCountingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func TestBlobSingleShot(t *testing.T) {
	s, _ := newBlobStore(t, 1<<20)
	img := blobPNG(t, 10, 10)
	sum := blobSum(img)

	off, complete, err := s.Append("", sum, 0, int64(len(img)), bytes.NewReader(img))
	if err != nil || !complete || off != int64(len(img)) {
		t.Fatalf("Append = (%d, %v, %v), want (%d, true, nil)", off, complete, err, len(img))
	}
	complete, off, err = s.Stat(sum)
	if err != nil || !complete || off != int64(len(img)) {
		t.Fatalf("Stat = (%v, %d, %v), want (true, %d, nil)", complete, off, err, len(img))
	}
	if !s.Has(sum) {
		t.Fatal("Has = false after a complete upload")
	}
	wantBlobContent(t, s, sum, img, "image/png")
	if err := s.Verify(sum); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestBlobChunkedPNG(t *testing.T) {
	s, _ := newBlobStore(t, 1<<20)
	img := blobPNG(t, 160, 160)
	if len(img) < 100_000 {
		t.Fatalf("test image is %d bytes, want at least 100 KB", len(img))
	}
	sum := blobSum(img)
	cuts := []int{0, 40_000, 80_000, len(img)}

	for i := range 3 {
		length := int64(-1)
		if i == 0 {
			length = int64(len(img))
		}
		off, complete, err := s.Append("", sum, int64(cuts[i]), length, bytes.NewReader(img[cuts[i]:cuts[i+1]]))
		last := i == 2
		if err != nil || off != int64(cuts[i+1]) || complete != last {
			t.Fatalf("chunk %d: Append = (%d, %v, %v), want (%d, %v, nil)", i, off, complete, err, cuts[i+1], last)
		}
		if !last {
			if s.Has(sum) {
				t.Fatalf("chunk %d: Has = true before the last chunk", i)
			}
			if whole, err := syncer.WholeSums(s); err != nil || len(whole) != 0 {
				t.Fatalf("chunk %d: whole blobs %v (%v) before the upload is whole", i, whole, err)
			}
			complete, held, err := s.Stat(sum)
			if err != nil || complete || held != int64(cuts[i+1]) {
				t.Fatalf("chunk %d: Stat = (%v, %d, %v), want (false, %d, nil)", i, complete, held, err, cuts[i+1])
			}
		}
	}
	wantBlobContent(t, s, sum, img, "image/png")
	if traces, _ := syncer.PartialTraces(s); len(traces) != 0 {
		t.Errorf("%v left of the upload after it completed", traces)
	}
}

func TestBlobResumeAfterRestart(t *testing.T) {
	s, open := newBlobStore(t, 1<<20)
	img := blobPNG(t, 50, 50)
	sum := blobSum(img)
	if _, _, err := s.Append("", sum, 0, int64(len(img)), bytes.NewReader(img[:3000])); err != nil {
		t.Fatal(err)
	}

	restarted := open()
	complete, off, err := restarted.Stat(sum)
	if err != nil || complete || off != 3000 {
		t.Fatalf("Stat after restart = (%v, %d, %v), want (false, 3000, nil)", complete, off, err)
	}
	// The declared length survived the restart: the next chunk need not repeat it.
	off, complete, err = restarted.Append("", sum, off, -1, bytes.NewReader(img[off:]))
	if err != nil || !complete || off != int64(len(img)) {
		t.Fatalf("Append after restart = (%d, %v, %v), want (%d, true, nil)", off, complete, err, len(img))
	}
	wantBlobContent(t, restarted, sum, img, "image/png")
}

func TestBlobWrongOffset(t *testing.T) {
	s, _ := newBlobStore(t, 1<<20)
	img := blobPNG(t, 50, 50)
	sum := blobSum(img)
	if _, _, err := s.Append("", sum, 0, int64(len(img)), bytes.NewReader(img[:1000])); err != nil {
		t.Fatal(err)
	}

	for _, offset := range []int64{0, 5, 999, 1001, 5000} {
		t.Run(strconv.FormatInt(offset, 10), func(t *testing.T) {
			r := &blobCountingReader{r: bytes.NewReader(img[offset:])}
			off, complete, err := s.Append("", sum, offset, -1, r)
			e := wantBlobError(t, err, schema.CodeConflict, "")
			if !strings.Contains(e.Message, "1000") || !strings.Contains(e.Message, sum) {
				t.Errorf("message %q does not name the sum and the current offset 1000", e.Message)
			}
			if off != 1000 || complete || r.reads != 0 {
				t.Errorf("Append = (%d, %v) after %d reads, want (1000, false) after none", off, complete, r.reads)
			}
		})
	}
	if _, off, _ := s.Stat(sum); off != 1000 {
		t.Fatalf("Stat offset = %d after refused chunks, want 1000", off)
	}
}

func TestBlobHashMismatch(t *testing.T) {
	s, _ := newBlobStore(t, 1<<20)
	img := blobPNG(t, 20, 20)
	other := blobSum(blobPNG(t, 21, 21))

	_, complete, err := s.Append("", other, 0, int64(len(img)), bytes.NewReader(img))
	wantBlobError(t, err, schema.CodeHashMismatch, "")
	if complete {
		t.Fatal("complete = true for content that does not match its sum")
	}
	wantNothingHeld(t, s, other)
	if s.Has(blobSum(img)) {
		t.Fatal("the content was stored under its own sum")
	}
}

func TestBlobRefusesNonImages(t *testing.T) {
	gif := []byte("GIF89a\x01\x00\x01\x00")
	tests := []struct {
		name    string
		content []byte
	}{
		{"text", []byte("this is a signature, honestly")},
		{"gif", gif},
		// A PDF is taken (a paper sheet's scan) only whole: a cut-off one is refused.
		{"pdf cut short", []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer")},
		{"wav", []byte("RIFF\x24\x00\x00\x00WAVEfmt ")},
		{"short", []byte("hi")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newBlobStore(t, 1<<20)
			sum := blobSum(tt.content)
			_, complete, err := s.Append("", sum, 0, int64(len(tt.content)), bytes.NewReader(tt.content))
			wantBlobError(t, err, schema.CodeUnsupportedMedia, "")
			if complete {
				t.Fatal("complete = true for a refused type")
			}
			wantNothingHeld(t, s, sum)
		})
	}

	t.Run("refused at the first chunk", func(t *testing.T) {
		s, _ := newBlobStore(t, 1<<20)
		big := append(bytes.Clone(gif), bytes.Repeat([]byte("0"), 10_000)...)
		sum := blobSum(big)
		_, _, err := s.Append("", sum, 0, int64(len(big)), bytes.NewReader(big[:100]))
		wantBlobError(t, err, schema.CodeUnsupportedMedia, "")
		wantNothingHeld(t, s, sum)
	})
}

// TestBlobRefusesDamagedImages checks that an upload is decoded whole before it is kept: a
// valid image header followed by anything else (HTML, a truncated image, an image of absurd
// size) is refused as unsupported_media and nothing of it is kept, so it can never be sealed
// into a sheet whose PDF then fails forever.
func TestBlobRefusesDamagedImages(t *testing.T) {
	png := blobPNG(t, 16, 16)
	jpg := blobJPEG(t)
	huge := func() []byte { // a valid PNG header declaring 100000 x 100000 pixels
		var b bytes.Buffer
		b.Write(png[:16])
		b.Write([]byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
		b.Write(png[24:])
		return b.Bytes()
	}()
	tests := []struct {
		name    string
		content []byte
	}{
		{"png header then html", append([]byte("\x89PNG\r\n\x1a\n"), []byte("<html><script>alert(1)</script></html>")...)},
		{"jpeg header then html", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, []byte("<html><body>hello</body></html>")...)},
		{"webp header then html", append([]byte("RIFF\x40\x00\x00\x00WEBP"), []byte("<html></html>")...)},
		{"truncated png", png[:len(png)/2]},
		{"truncated jpeg", jpg[:len(jpg)-20]},
		{"png with html after its end", append(bytes.Clone(png[:len(png)-12]), []byte("<html></html>")...)},
		{"100000x100000 png", huge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newBlobStore(t, 1<<20)
			sum := blobSum(tt.content)
			_, complete, err := s.Append("", sum, 0, int64(len(tt.content)), bytes.NewReader(tt.content))
			wantBlobError(t, err, schema.CodeUnsupportedMedia, "")
			if complete {
				t.Fatal("complete = true for a damaged image")
			}
			wantNothingHeld(t, s, sum)
		})
	}
}

func TestBlobTooLarge(t *testing.T) {
	img := blobPNG(t, 20, 20)
	sum := blobSum(img)

	t.Run("refused before reading", func(t *testing.T) {
		s, _ := newBlobStore(t, int64(len(img))-1)
		r := &blobCountingReader{r: bytes.NewReader(img)}
		_, _, err := s.Append("", sum, 0, int64(len(img)), r)
		e := wantBlobError(t, err, schema.CodeTooLarge, "Upload-Length")
		if r.reads != 0 {
			t.Errorf("read %d times from a refused upload", r.reads)
		}
		if !strings.Contains(e.Message, strconv.Itoa(len(img)-1)) {
			t.Errorf("message %q does not name the limit", e.Message)
		}
		wantNothingHeld(t, s, sum)
	})

	t.Run("limit lowered during an upload, then raised", func(t *testing.T) {
		s, _ := newBlobStore(t, 1<<20)
		if _, _, err := s.Append("", sum, 0, int64(len(img)), bytes.NewReader(img[:100])); err != nil {
			t.Fatal(err)
		}
		s.SetMaxBytes(100)
		_, _, err := s.Append("", sum, 100, -1, bytes.NewReader(img[100:]))
		wantBlobError(t, err, schema.CodeTooLarge, "")
		wantNothingHeld(t, s, sum)

		s.SetMaxBytes(int64(len(img)))
		if _, complete, err := s.Append("", sum, 0, int64(len(img)), bytes.NewReader(img)); err != nil || !complete {
			t.Fatalf("Append at the new limit = (%v, %v), want complete", complete, err)
		}
	})
}

func TestBlobLengthRules(t *testing.T) {
	img := blobPNG(t, 20, 20)
	sum := blobSum(img)

	t.Run("empty", func(t *testing.T) {
		s, _ := newBlobStore(t, 1<<20)
		emptySum := blobSum(nil)
		_, _, err := s.Append("", emptySum, 0, 0, bytes.NewReader(nil))
		e := wantBlobError(t, err, schema.CodeValidation, "Upload-Length")
		if !strings.Contains(e.Message, "empty") {
			t.Errorf("message %q does not say empty", e.Message)
		}
		wantNothingHeld(t, s, emptySum)
	})

	t.Run("first chunk without length", func(t *testing.T) {
		s, _ := newBlobStore(t, 1<<20)
		_, _, err := s.Append("", sum, 0, -1, bytes.NewReader(img))
		wantBlobError(t, err, schema.CodeValidation, "Upload-Length")
		wantNothingHeld(t, s, sum)
	})

	t.Run("length changed mid-upload", func(t *testing.T) {
		s, _ := newBlobStore(t, 1<<20)
		if _, _, err := s.Append("", sum, 0, int64(len(img)), bytes.NewReader(img[:100])); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.Append("", sum, 100, int64(len(img))+1, bytes.NewReader(img[100:]))
		wantBlobError(t, err, schema.CodeValidation, "Upload-Length")
	})

	t.Run("chunk past the declared length", func(t *testing.T) {
		s, _ := newBlobStore(t, 1<<20)
		if _, _, err := s.Append("", sum, 0, int64(len(img)), bytes.NewReader(img[:100])); err != nil {
			t.Fatal(err)
		}
		tooMuch := append(bytes.Clone(img[100:]), "trailing junk"...)
		_, complete, err := s.Append("", sum, 100, -1, bytes.NewReader(tooMuch))
		wantBlobError(t, err, schema.CodeValidation, "Upload-Length")
		if complete {
			t.Fatal("complete = true for a chunk past the declared length")
		}
		held, err := syncer.PartialContent(s, sum)
		if err != nil || !bytes.Equal(held, img[:100]) {
			t.Fatalf("partial holds %d bytes (%v), want the first 100 untouched", len(held), err)
		}
		if _, complete, err := s.Append("", sum, 100, -1, bytes.NewReader(img[100:])); err != nil || !complete {
			t.Fatalf("the right chunk after a refused one = (%v, %v), want complete", complete, err)
		}
		wantBlobContent(t, s, sum, img, "image/png")
	})
}

func TestBlobStoredOnce(t *testing.T) {
	s, _ := newBlobStore(t, 1<<20)
	img := blobPNG(t, 20, 20)
	sum := blobSum(img)
	if _, _, err := s.Append("", sum, 0, int64(len(img)), bytes.NewReader(img)); err != nil {
		t.Fatal(err)
	}

	r := &blobCountingReader{r: bytes.NewReader(img)}
	off, complete, err := s.Append("", sum, 0, int64(len(img)), r)
	if err != nil || !complete || off != int64(len(img)) || r.reads != 0 {
		t.Fatalf("second Append = (%d, %v, %v) after %d reads, want (%d, true, nil) after none",
			off, complete, err, r.reads, len(img))
	}
	names, err := syncer.WholeSums(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != sum {
		t.Fatalf("store holds %v, want only %s", names, sum)
	}
}

func TestBlobConcurrentAppends(t *testing.T) {
	s, _ := newBlobStore(t, 1<<20)
	img := blobPNG(t, 100, 100)
	small := blobPNG(t, 10, 10)
	const chunk = 7_000

	// upload sends img chunk by chunk, asking Stat where to resume, as a phone that lost its
	// connection would; other goroutines sending the same blob make it lose races.
	upload := func(content []byte) error {
		sum := blobSum(content)
		for {
			complete, off, err := s.Stat(sum)
			if err != nil || complete {
				return err
			}
			end := min(off+chunk, int64(len(content)))
			_, _, err = s.Append("", sum, off, int64(len(content)), bytes.NewReader(content[off:end]))
			if schema.ErrorCode(err) != schema.CodeConflict && err != nil {
				return err
			}
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		content := img
		if i%4 == 0 {
			content = small
		}
		wg.Go(func() { errs <- upload(content) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	wantBlobContent(t, s, blobSum(img), img, "image/png")
	wantBlobContent(t, s, blobSum(small), small, "image/png")
	if err := errors.Join(s.Verify(blobSum(img)), s.Verify(blobSum(small))); err != nil {
		t.Fatal(err)
	}
}

// TestBlobTamperedPartialNeverServed checks that bytes of an unfinished upload changed
// behind the store's back (here between a chunk taken by one instance and the last chunk
// taken by another) are caught by the hash when the upload completes: refused
// hash_mismatch, nothing of it kept or served, and the upload starts over cleanly.
func TestBlobTamperedPartialNeverServed(t *testing.T) {
	a, open := newBlobStore(t, 1<<20)
	b := open()
	img := blobPNG(t, 100, 100)
	sum := blobSum(img)
	if _, _, err := a.Append("dev-a", sum, 0, int64(len(img)), bytes.NewReader(img[:1000])); err != nil {
		t.Fatal(err)
	}
	if err := syncer.FlipPartialByte(a, sum); err != nil {
		t.Fatal(err)
	}
	_, complete, err := b.Append("dev-a", sum, 1000, -1, bytes.NewReader(img[1000:]))
	wantBlobError(t, err, schema.CodeHashMismatch, "sha256")
	if complete {
		t.Fatal("complete = true for tampered content")
	}
	for _, s := range []*syncer.BlobStore{a, b} {
		wantNothingHeld(t, s, sum)
		if _, _, _, err := s.Open(sum); schema.ErrorCode(err) != schema.CodeNotFound {
			t.Fatalf("Open after a refused upload: %v, want not_found", err)
		}
	}
	if _, complete, err := a.Append("dev-a", sum, 0, int64(len(img)), bytes.NewReader(img)); err != nil || !complete {
		t.Fatalf("the upload sent again = (%v, %v), want complete", complete, err)
	}
	wantBlobContent(t, b, sum, img, "image/png")
}

func TestBlobMediaTypes(t *testing.T) {
	jpg := blobJPEG(t)
	tests := []struct {
		name    string
		content []byte
		want    string
	}{
		{"png", blobPNG(t, 2, 2), "image/png"},
		{"jpeg", jpg, "image/jpeg"},
		{"webp", blobWebP, "image/webp"},
		{"pdf", []byte("%PDF-1.7\n%%EOF\n"), "application/pdf"},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), ""},
		{"riff but wav", []byte("RIFF\x24\x00\x00\x00WAVEfmt "), ""},
		{"png cut short", []byte("\x89PNG\r\n"), ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := syncer.MediaType(tt.content); got != tt.want {
				t.Fatalf("MediaType = %q, want %q", got, tt.want)
			}
			if tt.want == "" {
				return
			}
			s, _ := newBlobStore(t, 1<<20)
			sum := blobSum(tt.content)
			if _, complete, err := s.Append("", sum, 0, int64(len(tt.content)), bytes.NewReader(tt.content)); err != nil || !complete {
				t.Fatalf("Append = (%v, %v), want complete", complete, err)
			}
			wantBlobContent(t, s, sum, tt.content, tt.want)
		})
	}
}

func TestBlobInvalidSum(t *testing.T) {
	s, _ := newBlobStore(t, 1<<20)
	valid := blobSum([]byte("x"))
	for _, sum := range []string{
		"",
		"abc",
		strings.ToUpper(valid),
		valid[:63] + "g",
		valid + "0",
		"../../../../../../../../../../../../../../../../../../../etc/passwd",
	} {
		t.Run(sum, func(t *testing.T) {
			_, _, err := s.Stat(sum)
			wantBlobError(t, err, schema.CodeValidation, "sha256")
			_, _, err = s.Append("", sum, 0, 10, strings.NewReader("0123456789"))
			wantBlobError(t, err, schema.CodeValidation, "sha256")
			_, _, _, err = s.Open(sum)
			wantBlobError(t, err, schema.CodeValidation, "sha256")
			wantBlobError(t, s.Verify(sum), schema.CodeValidation, "sha256")
			if s.Has(sum) {
				t.Fatal("Has = true for an invalid sum")
			}
		})
	}
}

func TestBlobOpenAndVerify(t *testing.T) {
	s, _ := newBlobStore(t, 1<<20)
	img := blobPNG(t, 20, 20)
	sum := blobSum(img)

	_, _, _, err := s.Open(sum)
	wantBlobError(t, err, schema.CodeNotFound, "")
	wantBlobError(t, s.Verify(sum), schema.CodeNotFound, "")

	if _, _, err := s.Append("", sum, 0, int64(len(img)), bytes.NewReader(img[:50])); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = s.Open(sum)
	wantBlobError(t, err, schema.CodeNotFound, "") // a partial upload is not downloadable

	if _, _, err := s.Append("", sum, 50, -1, bytes.NewReader(img[50:])); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(sum); err != nil {
		t.Fatalf("Verify of an intact blob: %v", err)
	}
	tampered := bytes.Clone(img)
	tampered[len(tampered)-1] ^= 0xFF
	if err := syncer.ReplaceBlob(s, sum, tampered); err != nil {
		t.Fatal(err)
	}
	e := wantBlobError(t, s.Verify(sum), schema.CodeHashMismatch, "")
	if !strings.Contains(e.Message, sum) || !strings.Contains(e.Message, blobSum(tampered)) {
		t.Errorf("message %q does not name the sum and the hash found", e.Message)
	}
}

func TestOpenBlobStoreRefusesNoLimit(t *testing.T) {
	if _, err := syncer.OpenBlobStore(t.TempDir(), 0); err == nil {
		t.Fatal("OpenBlobStore with limit 0 succeeded")
	}
	dir := t.TempDir()
	db, err := schema.OpenStore(context.Background(), dir, testpg.For(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := syncer.OpenBlobStoreIn(db, filepath.Join(dir, "blobs"), 0); err == nil {
		t.Fatal("OpenBlobStoreIn with limit 0 succeeded")
	}
}

// FuzzBlobAppend uploads arbitrary content in two chunks split at split, and checks that the
// store keeps exactly the accepted images (non-empty, under the limit, PNG, JPEG or WebP
// that decode whole) byte for byte and leaves no trace of anything else.
func FuzzBlobAppend(f *testing.F) {
	const limit = 4096
	f.Add(blobWebP, uint16(5))
	f.Add([]byte("\xff\xd8\xff"), uint16(1))
	f.Add([]byte("%PDF-1.4\n"), uint16(0))
	f.Add(append([]byte("\x89PNG\r\n\x1a\n"), "<html><script>alert(1)</script></html>"...), uint16(9))
	f.Add(blobJPEG(f), uint16(30))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		s, _ := newBlobStore(t, limit)
		sum := blobSum(data)
		cut := min(int(split), len(data))

		_, complete, err := s.Append("", sum, 0, int64(len(data)), bytes.NewReader(data[:cut]))
		if err == nil && !complete {
			_, complete, err = s.Append("", sum, int64(cut), -1, bytes.NewReader(data[cut:]))
		}

		switch {
		case len(data) == 0:
			wantBlobError(t, err, schema.CodeValidation, "Upload-Length")
		case len(data) > limit:
			wantBlobError(t, err, schema.CodeTooLarge, "Upload-Length")
		case syncer.MediaType(data) == "", syncer.CheckImage(data) != nil:
			wantBlobError(t, err, schema.CodeUnsupportedMedia, "")
		default:
			if err != nil || !complete {
				t.Fatalf("Append = (%v, %v), want complete", complete, err)
			}
			wantBlobContent(t, s, sum, data, syncer.MediaType(data))
			return
		}
		wantNothingHeld(t, s, sum)
	})
}

// TestBlobPartialQuotaPerDevice checks that one device cannot fill the disk with uploads it
// never finishes: past PartialUploadsPerDevice times blob_max_bytes of unfinished uploads, a
// new upload from that device is refused rate_limited and nothing of it is kept, while its
// uploads already begun still resume and another device is not affected.
func TestBlobPartialQuotaPerDevice(t *testing.T) {
	const limit = 4096
	s, open := newBlobStore(t, limit)
	// Uploads begin on two instances in turn (on SQLite, one store): the quota is the
	// device's, whichever instance it reaches.
	instances := []*syncer.BlobStore{s, s}
	if testpg.On() {
		instances[1] = open()
	}
	head := blobPNG(t, 2, 2)[:16]
	begin := func(owner string, i int) (string, error) {
		sum := blobSum([]byte(fmt.Sprint(owner, i)))
		_, _, err := instances[i%2].Append(owner, sum, 0, limit, bytes.NewReader(head))
		return sum, err
	}
	var first string
	for i := range syncer.PartialUploadsPerDevice {
		sum, err := begin("dev-a", i)
		if err != nil {
			t.Fatalf("upload %d of dev-a within its quota: %v", i, err)
		}
		if i == 0 {
			first = sum
		}
	}
	sum, err := begin("dev-a", 99)
	wantBlobError(t, err, schema.CodeRateLimited, "")
	if _, off, _ := s.Stat(sum); off != 0 {
		t.Errorf("the refused upload left %d bytes", off)
	}
	if n, _, err := s.Append("dev-a", first, int64(len(head)), -1, bytes.NewReader(make([]byte, 10))); err != nil || n != int64(len(head))+10 {
		t.Errorf("resuming an upload begun within the quota: %d, %v", n, err)
	}
	if _, err := begin("dev-b", 0); err != nil {
		t.Errorf("another device: %v", err)
	}

	// Uploads of one device begun at once on both instances: exactly the quota's worth
	// is taken.
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken, limited := 0, 0
	for i := range 2*syncer.PartialUploadsPerDevice + 4 {
		wg.Go(func() {
			_, err := begin("dev-c", i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				taken++
			case schema.ErrorCode(err) == schema.CodeRateLimited:
				limited++
			default:
				t.Errorf("upload %d of dev-c: %v", i, err)
			}
		})
	}
	wg.Wait()
	if taken != syncer.PartialUploadsPerDevice || limited != syncer.PartialUploadsPerDevice+4 {
		t.Errorf("uploads begun at once: %d taken, %d refused; want %d taken, the other %d refused",
			taken, limited, syncer.PartialUploadsPerDevice, syncer.PartialUploadsPerDevice+4)
	}
}

// TestBlobSweepPartial checks that uploads left unfinished longer than PartialUploadMaxAge
// are deleted (their device's quota with them), and that newer ones and whole blobs stay.
func TestBlobSweepPartial(t *testing.T) {
	s, _ := newBlobStore(t, 1<<20)
	img := blobPNG(t, 8, 8)
	whole := blobSum(img)
	if _, _, err := s.Append("dev-a", whole, 0, int64(len(img)), bytes.NewReader(img)); err != nil {
		t.Fatal(err)
	}
	other := blobPNG(t, 9, 9)
	stale, fresh := blobSum(other), blobSum(blobPNG(t, 10, 10))
	for _, sum := range []string{stale, fresh} {
		if _, _, err := s.Append("dev-a", sum, 0, int64(len(other)), bytes.NewReader(other[:20])); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	old := now.Add(-syncer.PartialUploadMaxAge - time.Hour)
	if err := syncer.AgeUpload(s, stale, old); err != nil {
		t.Fatal(err)
	}
	n, err := s.SweepPartial(now)
	if err != nil || n != 1 {
		t.Fatalf("SweepPartial = %d, %v; want 1 upload removed", n, err)
	}
	if _, off, _ := s.Stat(stale); off != 0 {
		t.Errorf("the stale upload still holds %d bytes", off)
	}
	traces, err := syncer.PartialTraces(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range traces {
		if !strings.Contains(name, fresh) {
			t.Errorf("%s left after the sweep; want only the fresh upload's", name)
		}
	}
	if _, off, _ := s.Stat(fresh); off != 20 {
		t.Errorf("the fresh upload holds %d bytes, want 20", off)
	}
	wantBlobContent(t, s, whole, img, "image/png")
}

// TestBlobAcrossInstances checks what several instances on one PostgreSQL database rely on
// (on SQLite, the second store is the same folder opened again, as after a restart): an
// upload begun on one instance resumes on the other, is never served by either while
// partial, and once whole is served by both; a chunk refused for running past the declared
// length leaves the bytes held before it, also at a chunk boundary of the database's rows.
func TestBlobAcrossInstances(t *testing.T) {
	a, open := newBlobStore(t, 1<<20)
	b := open()
	img := blobPNG(t, 400, 400) // over two rows of blob_chunks
	if len(img) < 600_000 {
		t.Fatalf("test image is %d bytes, want over 600 KB", len(img))
	}
	sum := blobSum(img)
	const boundary = 256 << 10

	if _, _, err := a.Append("dev-a", sum, 0, int64(len(img)), bytes.NewReader(img[:100_000])); err != nil {
		t.Fatal(err)
	}
	complete, off, err := b.Stat(sum)
	if err != nil || complete || off != 100_000 {
		t.Fatalf("Stat on the other instance = (%v, %d, %v), want (false, 100000, nil)", complete, off, err)
	}
	if off, _, err = b.Append("dev-a", sum, off, -1, bytes.NewReader(img[off:boundary])); err != nil || off != boundary {
		t.Fatalf("resuming on the other instance = %d, %v", off, err)
	}
	for _, s := range []*syncer.BlobStore{a, b} {
		if _, _, _, err := s.Open(sum); schema.ErrorCode(err) != schema.CodeNotFound || s.Has(sum) {
			t.Fatalf("a partial upload served: Open error %v, Has %v", err, s.Has(sum))
		}
	}
	// Too much, from the boundary: refused whole, the bytes before it kept.
	tooMuch := append(bytes.Clone(img[boundary:]), "trailing junk"...)
	_, _, err = a.Append("dev-a", sum, boundary, -1, bytes.NewReader(tooMuch))
	wantBlobError(t, err, schema.CodeValidation, "Upload-Length")
	if held, err := syncer.PartialContent(b, sum); err != nil || !bytes.Equal(held, img[:boundary]) {
		t.Fatalf("after a refused chunk %d bytes are held (%v), want the first %d untouched", len(held), err, boundary)
	}
	if off, complete, err := a.Append("dev-a", sum, boundary, -1, bytes.NewReader(img[boundary:])); err != nil || !complete || off != int64(len(img)) {
		t.Fatalf("the last chunk = (%d, %v, %v), want complete", off, complete, err)
	}
	for _, s := range []*syncer.BlobStore{a, b} {
		wantBlobContent(t, s, sum, img, "image/png")
		if err := s.Verify(sum); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("racing uploads of one blob on both", func(t *testing.T) {
		if !testpg.On() {
			t.Skip("on SQLite the blob folder belongs to one process")
		}
		other := blobPNG(t, 300, 300)
		sum := blobSum(other)
		const chunk = 50_000
		upload := func(s *syncer.BlobStore) error {
			for range 1000 {
				complete, off, err := s.Stat(sum)
				if err != nil || complete {
					return err
				}
				end := min(off+chunk, int64(len(other)))
				_, _, err = s.Append("dev-b", sum, off, int64(len(other)), bytes.NewReader(other[off:end]))
				if schema.ErrorCode(err) != schema.CodeConflict && err != nil {
					return err
				}
			}
			return errors.New("not whole after 1000 rounds")
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() { errs <- upload(s) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		wantBlobContent(t, a, sum, other, "image/png")
		wantBlobContent(t, b, sum, other, "image/png")
		if traces, _ := syncer.PartialTraces(a); len(traces) != 0 {
			t.Errorf("%v left of the uploads", traces)
		}
	})
}
