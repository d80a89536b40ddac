package reports

import (
	"bytes"
	"testing"
	"time"
)

// TestSheetShowsTheDeviceSignature: a sealed sheet signed on the phone says on paper which
// phone signed it (the technician's name and the phone's name), when by the phone's clock and
// how far that clock was off the server's, when the server received and sealed it, and that
// the device signature verified; a phone revoked afterwards is named so, its signature still
// valid. A sheet from an app without device keys says it was not signed on the device.
func TestSheetShowsTheDeviceSignature(t *testing.T) {
	off := 40 * time.Second
	s := pdfSealedSheet()
	s.Device = &DeviceSignature{Signed: true, Valid: true, User: "张伟 Zhang Wei", Device: "Mate 60",
		At: pdfAt(19, 14, 5), ClockOffset: &off}
	s.ServerReceivedAt = pdfAt(19, 18, 22)
	text := pdfSquash(poppler(t, pdfRender(t, func(b *bytes.Buffer) error { return RenderSheet(b, s, pdfOpts(LangBoth)) }), "pdftotext", "-raw"))
	pdfMustContain(t, text, pdfSquash("设备签名有效"), pdfSquash("device signature verified"),
		pdfSquash("签名手机：张伟 Zhang Wei 的手机（Mate 60）"), pdfSquash("signed on 张伟 Zhang Wei's phone (Mate 60)"),
		"2026-11-1914:05", pdfSquash("手机时钟比服务器快 40 s"), pdfSquash("the phone clock was 40 s ahead of the server's"),
		pdfSquash("服务器接收并封签"), pdfSquash("received and sealed by the server"), "2026-11-1918:22")
	pdfMustNotContain(t, text, "停用", "revoked")

	s.Device.RevokedAt = pdfAt(25, 9, 0)
	text = pdfSquash(poppler(t, pdfRender(t, func(b *bytes.Buffer) error { return RenderSheet(b, s, pdfOpts(LangEN)) }), "pdftotext", "-raw"))
	pdfMustContain(t, text, pdfSquash("this phone was revoked later (2026-11-25 09:00); the signature it made before then stays valid"),
		pdfSquash("device signature verified"))

	s.Device = &DeviceSignature{}
	text = pdfSquash(poppler(t, pdfRender(t, func(b *bytes.Buffer) error { return RenderSheet(b, s, pdfOpts(LangBoth)) }), "pdftotext", "-raw"))
	pdfMustContain(t, text, pdfSquash("未在设备上签名"), pdfSquash("not signed on the device"))
}
