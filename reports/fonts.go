package reports

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/jung-kurt/gofpdf"
)

// The fonts are embedded so that a fresh machine renders Chinese without
// installing anything. Licences are beside them in fonts/.
var (
	//go:embed fonts/DejaVuSans.ttf
	dejaVuSansTTF []byte
	//go:embed fonts/DejaVuSans-Bold.ttf
	dejaVuSansBoldTTF []byte
	//go:embed fonts/DroidSansFallbackFull.ttf
	droidSansFallbackTTF []byte
)

// Font family names as registered with gofpdf.
const (
	famLatin  = "dejavusans"           // DejaVu Sans: Latin, digits, punctuation, symbols
	famCJK    = "droidsansfallback"    // Droid Sans Fallback, GB 2312 part: CJK, no Latin letters or digits
	famCJKExt = "droidsansfallbackext" // Droid Sans Fallback, rarer ideographs
)

// fontFace is one TrueType font prepared for gofpdf: the bytes handed to
// AddUTF8FontFromBytes, the runes its Unicode cmap maps to a glyph, and each
// rune's advance width in thousandths of the font size (as gofpdf counts).
type fontFace struct {
	family string
	style  string
	ttf    []byte
	cover  *runeSet
	width  []uint16 // indexed by rune, BMP only
}

// fontSet holds the process-wide fonts, prepared once by loadFonts.
type fontSet struct {
	latin, latinBold fontFace
	cjk              fontFace // the GB 2312 characters: nearly all Chinese text
	cjkExt           fontFace // the rest of Droid's ideographs, added to a document only when used
}

var (
	fontsOnce   sync.Once
	fontsCached *fontSet
	fontsErr    error
)

//go:embed fonts/gb2312.txt
var gb2312Chars string

// loadFonts prepares the embedded fonts once per process and returns them.
//
// gofpdf parses a font again for every document and again when it subsets it
// at output, so a document's cost grows with the number of glyphs in the
// fonts it registers: with the full Droid Sans Fallback (28,000 mapped
// characters) that alone took about 25 ms per document. loadFonts therefore
// cuts, once per process, DejaVu Sans down to the blocks fieldsync prints and
// Droid Sans Fallback into two faces: the 7,445 characters of GB 2312
// (fonts/gb2312.txt, which covers everyday Chinese) and the remaining
// ideographs, which a document registers only when a rare character in a
// name or address needs it. Every document then parses the small faces only.
func loadFonts() (*fontSet, error) {
	fontsOnce.Do(func() {
		fontsCached, fontsErr = prepareFonts()
	})
	return fontsCached, fontsErr
}

// latinBlocks are the ranges kept from DejaVu Sans.
var latinBlocks = [][2]rune{
	{0x0020, 0x024F}, // Basic Latin, Latin-1, Latin Extended-A/B
	{0x0370, 0x03FF}, // Greek
	{0x0400, 0x04FF}, // Cyrillic
	{0x2000, 0x206F}, // General Punctuation: “ ” ‘ ’ – — …
	{0x20A0, 0x20CF}, // Currency symbols
	{0x2100, 0x215F}, // Letterlike symbols and number forms: № ℃
	{0x2190, 0x22FF}, // Arrows, mathematical operators
	{0x2460, 0x24FF}, // Enclosed alphanumerics
	{0x2500, 0x27BF}, // Box drawing, shapes, dingbats: ☐ ✓ ✔
}

// cjkBlocks are the ranges kept from Droid Sans Fallback.
var cjkBlocks = [][2]rune{
	{0x2E80, 0x2FDF}, // CJK radicals
	{0x3000, 0x30FF}, // CJK symbols and punctuation, kana (・)
	{0x3100, 0x312F}, // Bopomofo
	{0x3200, 0x33FF}, // Enclosed CJK, CJK compatibility
	{0x3400, 0x4DBF}, // CJK Unified Ideographs Extension A
	{0x4E00, 0x9FFF}, // CJK Unified Ideographs
	{0xF900, 0xFAFF}, // CJK compatibility ideographs
	{0xFE30, 0xFE4F}, // CJK compatibility forms
	{0xFF00, 0xFFEF}, // Halfwidth and fullwidth forms: ，。：（）
}

func prepareFonts() (*fontSet, error) {
	inBlocks := func(blocks [][2]rune) func(rune) bool {
		return func(r rune) bool {
			for _, b := range blocks {
				if r >= b[0] && r <= b[1] {
					return true
				}
			}
			return false
		}
	}
	common := new(runeSet)
	for _, r := range gb2312Chars {
		common.add(r)
	}
	for r := rune(0x3000); r <= 0x303F; r++ { // CJK punctuation
		common.add(r)
	}
	for r := rune(0xFF00); r <= 0xFFEF; r++ { // fullwidth forms
		common.add(r)
	}
	isLatin := inBlocks(latinBlocks)
	isCJK := inBlocks(cjkBlocks)
	var fs fontSet
	var err error
	if fs.latin, err = cutFace(famLatin, "", "DejaVuSans.ttf", dejaVuSansTTF, isLatin); err != nil {
		return nil, err
	}
	if fs.latinBold, err = cutFace(famLatin, "B", "DejaVuSans-Bold.ttf", dejaVuSansBoldTTF, isLatin); err != nil {
		return nil, err
	}
	if fs.cjk, err = cutFace(famCJK, "", "DroidSansFallbackFull.ttf", droidSansFallbackTTF, func(r rune) bool {
		return isCJK(r) && common.has(r)
	}); err != nil {
		return nil, err
	}
	if fs.cjkExt, err = cutFace(famCJKExt, "", "DroidSansFallbackFull.ttf", droidSansFallbackTTF, func(r rune) bool {
		return isCJK(r) && !common.has(r)
	}); err != nil {
		return nil, err
	}
	return &fs, nil
}

// cutFace subsets ttf to the runes it maps and keep accepts, checks that
// the result still maps every one of them, and reads their widths.
func cutFace(family, style, name string, ttf []byte, keep func(rune) bool) (fontFace, error) {
	full, err := parseFont(ttf)
	if err != nil {
		return fontFace{}, fmt.Errorf("reports: font %s: %w", name, err)
	}
	var kept strings.Builder
	for r := rune(0x20); r <= 0xFFFF; r++ {
		if full.cover.has(r) && keep(r) {
			kept.WriteRune(r)
		}
	}
	cut, err := parseFont(gofpdf.UTF8CutFont(ttf, kept.String()))
	if err != nil {
		return fontFace{}, fmt.Errorf("reports: font %s after subsetting: %w", name, err)
	}
	cover := new(runeSet)
	for _, r := range kept.String() {
		if !cut.cover.has(r) {
			return fontFace{}, fmt.Errorf("reports: font %s lost U+%04X when subset", name, r)
		}
		cover.add(r) // the cut font also maps a few control runes gofpdf adds; ignore them
	}
	cut.cover = cover
	cut.family, cut.style = family, style
	return cut, nil
}

// addFonts registers the always-present faces with a document and reports
// gofpdf's error, which AddUTF8FontFromBytes only prints.
func (fs *fontSet) addFonts(pdf *gofpdf.Fpdf) error {
	for _, f := range []*fontFace{&fs.latin, &fs.latinBold, &fs.cjk} {
		if err := f.addTo(pdf); err != nil {
			return err
		}
	}
	return nil
}

// addTo registers the face with a document.
func (f *fontFace) addTo(pdf *gofpdf.Fpdf) error {
	pdf.AddUTF8FontFromBytes(f.family, f.style, f.ttf)
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("reports: adding font %s: %w", f.family, err)
	}
	if pdf.GetFontDesc(f.family, f.style).Ascent == 0 {
		return fmt.Errorf("reports: font %s %q was not registered", f.family, f.style)
	}
	return nil
}

// runeSet is a bitset over the Basic Multilingual Plane, the only plane
// gofpdf's format-4 cmap handling can reach.
type runeSet [0x10000 / 64]uint64

func (s *runeSet) add(r rune) { s[r>>6] |= 1 << (uint(r) & 63) }

func (s *runeSet) has(r rune) bool {
	if r < 0 || r > 0xFFFF {
		return false
	}
	return s[r>>6]&(1<<(uint(r)&63)) != 0
}

// parseFont reads what fieldsync needs from a TrueType font: the runes its
// Unicode format-4 cmap maps to a real glyph (the subtable gofpdf uses) and
// each one's advance width, scaled to thousandths of the font size and
// rounded as gofpdf does, so layout measures text exactly as gofpdf draws it.
func parseFont(ttf []byte) (fontFace, error) {
	be := binary.BigEndian
	if len(ttf) < 12 {
		return fontFace{}, errors.New("too short for a TrueType font")
	}
	if tag := be.Uint32(ttf); tag != 0x00010000 && tag != 0x74727565 {
		return fontFace{}, errors.New("not a plain TrueType font")
	}
	tables := map[string][]byte{}
	numTables := int(be.Uint16(ttf[4:]))
	for i := 0; i < numTables; i++ {
		rec := 12 + 16*i
		if rec+16 > len(ttf) {
			return fontFace{}, errors.New("truncated table directory")
		}
		off, size := int(be.Uint32(ttf[rec+8:])), int(be.Uint32(ttf[rec+12:]))
		if off < 0 || size < 0 || off+size > len(ttf) {
			return fontFace{}, fmt.Errorf("table %q out of range", ttf[rec:rec+4])
		}
		tables[string(ttf[rec:rec+4])] = ttf[off : off+size]
	}
	head, hhea, hmtx, cmap := tables["head"], tables["hhea"], tables["hmtx"], tables["cmap"]
	if len(head) < 20 || len(hhea) < 36 || hmtx == nil || len(cmap) < 4 {
		return fontFace{}, errors.New("missing head, hhea, hmtx or cmap table")
	}
	scale := 1000 / float64(be.Uint16(head[18:]))
	nMetrics := int(be.Uint16(hhea[34:]))
	if nMetrics == 0 || len(hmtx) < 4*nMetrics {
		return fontFace{}, errors.New("truncated hmtx table")
	}
	advance := func(glyph int) uint16 {
		if glyph >= nMetrics {
			glyph = nMetrics - 1
		}
		a := be.Uint16(hmtx[4*glyph:])
		if a >= 1<<15 {
			return 0
		}
		return uint16(math.Round(scale * float64(a)))
	}

	sub := -1
	n := int(be.Uint16(cmap[2:]))
	for i := 0; i < n && 4+8*i+8 <= len(cmap); i++ {
		rec := cmap[4+8*i:]
		platform, encoding := be.Uint16(rec), be.Uint16(rec[2:])
		off := int(be.Uint32(rec[4:]))
		if (platform == 3 && encoding == 1) || platform == 0 {
			if off+2 <= len(cmap) && be.Uint16(cmap[off:]) == 4 {
				sub = off
				break
			}
		}
	}
	if sub < 0 {
		return fontFace{}, errors.New("no Unicode format-4 cmap subtable")
	}
	t := cmap[sub:]
	if len(t) < 14 {
		return fontFace{}, errors.New("truncated cmap subtable")
	}
	segX2 := int(be.Uint16(t[6:]))
	ends := 14
	starts := ends + segX2 + 2
	deltas := starts + segX2
	rangeOffs := deltas + segX2
	if rangeOffs+segX2 > len(t) {
		return fontFace{}, errors.New("truncated cmap segments")
	}
	face := fontFace{ttf: ttf, cover: new(runeSet), width: make([]uint16, 0x10000)}
	for i := 0; i < segX2; i += 2 {
		end := int(be.Uint16(t[ends+i:]))
		start := int(be.Uint16(t[starts+i:]))
		delta := int(be.Uint16(t[deltas+i:]))
		ro := int(be.Uint16(t[rangeOffs+i:]))
		for c := start; c <= end && c != 0xFFFF; c++ {
			glyph := 0
			if ro == 0 {
				glyph = (c + delta) & 0xFFFF
			} else {
				p := rangeOffs + i + ro + 2*(c-start)
				if p+2 > len(t) {
					continue
				}
				if g := int(be.Uint16(t[p:])); g != 0 {
					glyph = (g + delta) & 0xFFFF
				}
			}
			if glyph != 0 {
				face.cover.add(rune(c))
				face.width[c] = advance(glyph)
			}
		}
	}
	return face, nil
}

// fontRun is a stretch of text set in one font face.
type fontRun struct {
	face *fontFace
	text string
}

// missingGlyph is what a document prints for a character none of its fonts
// draws: an emoji, an ideograph outside Unicode's Basic Multilingual Plane
// (𠮷), a control character, or invalid UTF-8. □ is the mark Chinese
// printing uses for a character that could not be set, so a reader sees
// that something is there. gofpdf cannot embed a character beyond U+FFFF at
// all (it fails the whole document), so these never reach it.
const missingGlyph = '□'

// glyph returns the face that draws r and the rune it draws: r itself when
// a face covers it, missingGlyph in DejaVu otherwise. Every text drawing and
// measuring call goes through glyph.
func (fs *fontSet) glyph(r rune, bold bool) (*fontFace, rune) {
	face := fs.faceFor(r, bold)
	if !face.cover.has(r) {
		r = missingGlyph
		face = fs.faceFor(r, bold)
	}
	return face, r
}

// splitRuns splits s into runs, each set in the face that covers it:
// DejaVu Sans where it has the glyph (Latin, digits, most punctuation,
// “quotes”), Droid Sans Fallback otherwise (Chinese, fullwidth punctuation).
// bold picks DejaVu Sans Bold for the Latin runs (Droid has no bold). A rune
// no face covers is replaced by missingGlyph.
func (fs *fontSet) splitRuns(s string, bold bool) []fontRun {
	var runs []fontRun
	var text strings.Builder
	var cur *fontFace
	for _, r := range s {
		face, g := fs.glyph(r, bold)
		if face != cur && text.Len() > 0 {
			runs = append(runs, fontRun{cur, text.String()})
			text.Reset()
		}
		cur = face
		text.WriteRune(g)
	}
	if text.Len() > 0 {
		runs = append(runs, fontRun{cur, text.String()})
	}
	return runs
}

// faceFor picks the face that draws r, DejaVu when none does.
func (fs *fontSet) faceFor(r rune, bold bool) *fontFace {
	latin := &fs.latin
	if bold {
		latin = &fs.latinBold
	}
	switch {
	case fs.latin.cover.has(r):
		return latin
	case fs.cjk.cover.has(r):
		return &fs.cjk
	case fs.cjkExt.cover.has(r):
		return &fs.cjkExt
	}
	return latin
}

// covers reports whether the face faceFor picks for r has a glyph for it,
// in regular and in bold.
func (fs *fontSet) covers(r rune) bool {
	return fs.faceFor(r, false).cover.has(r) && fs.faceFor(r, true).cover.has(r)
}

// runeWidth is the advance of r as drawn (see glyph) in thousandths of the
// font size.
func (fs *fontSet) runeWidth(r rune, bold bool) int {
	face, g := fs.glyph(r, bold)
	return face.runeWidth(g)
}

// runeWidth is r's advance in thousandths of the font size.
func (f *fontFace) runeWidth(r rune) int {
	if r >= 0 && int(r) < len(f.width) {
		return int(f.width[r])
	}
	return 0
}
