package reports

import (
	"fmt"

	qrcode "github.com/skip2/go-qrcode"
)

// qr draws a QR code carrying content as vector squares in the box
// (x, y, size, size), with its quiet zone inside the box. Vector modules
// stay sharp at any print resolution and need no image in the PDF.
func (d *doc) qr(content string, x, y, size float64) error {
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return fmt.Errorf("reports: QR code: %w", err)
	}
	q.DisableBorder = true
	bits := q.Bitmap()
	n := len(bits)
	if n == 0 {
		return fmt.Errorf("reports: QR code: empty bitmap")
	}
	const quiet = 2 // modules of white margin on each side
	m := size / float64(n+2*quiet)
	ox, oy := x+quiet*m, y+quiet*m
	d.pdf.SetFillColor(0, 0, 0)
	for row, line := range bits {
		// One rectangle per horizontal run of dark modules.
		for col := 0; col < n; {
			if !line[col] {
				col++
				continue
			}
			start := col
			for col < n && line[col] {
				col++
			}
			d.pdf.Rect(ox+float64(start)*m, oy+float64(row)*m, float64(col-start)*m, m, "F")
		}
	}
	return nil
}
