package reports

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"

	"github.com/jung-kurt/gofpdf"
	"golang.org/x/image/webp"
)

// maxImagePixels bounds a signature or stamp image's size, so a crafted
// file cannot make the renderer allocate gigabytes when decoding.
const maxImagePixels = 25_000_000

// ErrNotImage is returned (wrapped) when a signature or stamp is not a PNG,
// JPEG or WebP image.
var ErrNotImage = errors.New("not a PNG, JPEG or WebP image")

// image draws the picture in data (PNG, JPEG or WebP) centred in the box
// (x, y, w, h), scaled to fit with its aspect ratio kept. gofpdf reads
// PNG and JPEG itself; WebP, and PNGs it cannot read (interlaced, 16-bit),
// are decoded here and handed over as plain 8-bit PNG.
func (d *doc) image(what string, data []byte, x, y, w, h float64) error {
	format, err := sniffImage(data)
	if err != nil {
		return fmt.Errorf("reports: %s: %w", what, err)
	}
	d.images++
	name := fmt.Sprintf("img%d", d.images)
	var info *gofpdf.ImageInfoType
	if format == "jpeg" || format == "png" {
		tp := map[string]string{"jpeg": "JPG", "png": "PNG"}[format]
		info = d.registerImage(name, tp, data)
		if d.pdf.Error() != nil {
			// A PNG gofpdf cannot read (interlaced, 16-bit): convert below.
			d.pdf.ClearError()
			info = nil
		}
	}
	if info == nil {
		pngBytes, err := reencodePNG(data)
		if err != nil {
			return fmt.Errorf("reports: %s: %w", what, err)
		}
		name += "r"
		info = d.registerImage(name, "PNG", pngBytes)
	}
	if err := d.pdf.Error(); err != nil {
		return fmt.Errorf("reports: %s: %w", what, err)
	}
	iw, ih := info.Width(), info.Height()
	if iw <= 0 || ih <= 0 {
		return fmt.Errorf("reports: %s: empty image", what)
	}
	scale := min(w/iw, h/ih)
	dw, dh := iw*scale, ih*scale
	d.pdf.ImageOptions(name, x+(w-dw)/2, y+(h-dh)/2, dw, dh, false, gofpdf.ImageOptions{}, 0, "")
	return nil
}

// registerImage hands an image to gofpdf, turning a panic in its parser
// into the document's error.
func (d *doc) registerImage(name, tp string, data []byte) (info *gofpdf.ImageInfoType) {
	defer func() {
		if r := recover(); r != nil {
			d.pdf.SetError(fmt.Errorf("%w: %v", ErrNotImage, r))
			info = nil
		}
	}()
	return d.pdf.RegisterImageOptionsReader(name, gofpdf.ImageOptions{ImageType: tp}, bytes.NewReader(data))
}

// sniffImage names the format of data ("png", "jpeg" or "webp") after
// checking its size is sane and that the whole image decodes, so that a
// damaged file is reported rather than drawn half or crashing gofpdf.
func sniffImage(data []byte) (string, error) {
	if len(data) == 0 {
		return "", errors.New("empty image")
	}
	var cfg image.Config
	var err error
	var format string
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		format = "png"
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		format = "jpeg"
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		format = "webp"
		cfg, err = webp.DecodeConfig(bytes.NewReader(data))
	default:
		return "", ErrNotImage
	}
	if err != nil {
		return "", fmt.Errorf("%w: damaged %s: %v", ErrNotImage, format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxImagePixels {
		return "", fmt.Errorf("image size %dx%d out of range", cfg.Width, cfg.Height)
	}
	if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
		return "", fmt.Errorf("%w: damaged %s: %v", ErrNotImage, format, err)
	}
	return format, nil
}

// reencodePNG decodes any supported image and encodes it as 8-bit,
// non-interlaced PNG, the form gofpdf reads.
func reencodePNG(data []byte) ([]byte, error) {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	rgba := image.NewNRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, draw.Src)
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, rgba); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
