package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"fieldsync/schema"
	syncer "fieldsync/sync"
)

// demoSheet fills, signs and (past completed) receives the feedback sheet of a demo phone
// service the way a phone and a coordinator would: the technician creates the sheet with
// the customer's signature and stamp images, signs it, and the coordinator's receive moves
// the ticket to sheet_received. The sheet of the ticket left at completed has no stamp (the
// customer's stamp was not at hand), so the demo shows an incomplete sheet waiting for the
// coordinator.
func (sd *seeder) demoSheet(actors map[string]schema.Actor, ticketID string, i int, end string) {
	if sd.err != nil {
		return
	}
	tech := actors["tech1"]
	sig, err := sd.s.putDemoBlob(demoSignature(i))
	if err != nil {
		sd.err = err
		return
	}
	techSig, err := sd.s.putDemoBlob(demoSignature(i + 7))
	if err != nil {
		sd.err = err
		return
	}
	f := map[string]any{"ticket_id": ticketID, "service_mode": "phone",
		"fault_symptoms":    "参数设置咨询 / parameter settings question",
		"inspection_record": "电话核对参数表，加速时间设置过短 / checked the parameters by phone: acceleration time too short",
		"handling_result":   "指导客户修改参数并试运行正常 / guided the customer to change it; test run normal",
		"rating":            5 - i%2, "rating_comment": "响应及时 / prompt", "signer_name": []string{"孙丽", "周明", "吴昊", "孙丽"}[i%4],
		"signature_blob": sig, "technician_signature_blob": techSig}
	if end == schema.StCompleted {
		f["absent_reason"] = "客户公章不在现场，稍后补盖 / the company stamp was not at hand"
	} else {
		stamp, err := sd.s.putDemoBlob(demoStamp())
		if err != nil {
			sd.err = err
			return
		}
		f["stamp_blob"] = stamp
	}
	id := sd.create(tech, schema.EntSheet, f)
	sd.apply(tech, syncer.Mutation{Entity: schema.EntSheet, ID: id, Op: "action", Action: schema.SheetSign})
	if end != schema.StCompleted {
		sd.apply(actors["coord"], syncer.Mutation{Entity: schema.EntSheet, ID: id, Op: "action", Action: schema.SheetReceive})
	}
}

// seedDemoSheets adds what the demo loop does not: a draft sheet being filled on the
// on-site ticket, so the demo shows every sheet status a phone starts from.
func (s *Server) seedDemoSheets(ctx context.Context, actors map[string]schema.Actor) error {
	tech := actors["tech3"]
	ts, err := s.Engine.List(ctx, syncer.Query{Entity: schema.EntTicket, Where: []string{"status = ?", "assignee_id = ?"}, Args: []any{schema.StOnSite, tech.UserID}})
	if err != nil {
		return err
	}
	sd := &seeder{s: s, ctx: ctx}
	for _, t := range ts {
		sd.create(tech, schema.EntSheet, map[string]any{"ticket_id": t.Str("id"), "arrived_at": t.Str("arrived_at"),
			"fault_symptoms": t.Str("fault_symptoms"), "inspection_record": "通讯模块指示灯不亮，正在排查 / comms module LED off, investigating"})
	}
	return sd.err
}

// putDemoBlob stores an image in the blob store and returns its SHA-256.
func (s *Server) putDemoBlob(b []byte) (string, error) {
	h := sha256.Sum256(b)
	sum := hex.EncodeToString(h[:])
	if s.Engine.Blobs.Has(sum) {
		return sum, nil
	}
	if _, _, err := s.Engine.Blobs.Append("", sum, 0, int64(len(b)), bytes.NewReader(b)); err != nil {
		return "", fmt.Errorf("demo image: %w", err)
	}
	return sum, nil
}

// demoSignature draws a small handwritten-looking stroke as a PNG; seed varies its shape.
func demoSignature(seed int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 180, 60))
	ink := color.NRGBA{R: 20, G: 30, B: 90, A: 255}
	for x := 10; x < 170; x++ {
		fx := float64(x)
		y := 30 + 14*math.Sin(fx/(9+float64(seed%5)))*math.Cos(fx/31)
		for d := -1; d <= 1; d++ {
			img.Set(x, int(y)+d, ink)
		}
	}
	return encodePNG(img)
}

// demoStamp draws a red company stamp ring with a star as a PNG.
func demoStamp() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 90, 90))
	red := color.NRGBA{R: 200, G: 20, B: 20, A: 230}
	for y := 0; y < 90; y++ {
		for x := 0; x < 90; x++ {
			r := math.Hypot(float64(x)-45, float64(y)-45)
			a := math.Atan2(float64(y)-45, float64(x)-45)
			star := 10 + 6*math.Cos(5*a)
			if r >= 38 && r <= 42 || r <= star {
				img.Set(x, y, red)
			}
		}
	}
	return encodePNG(img)
}

func encodePNG(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err) // encoding an in-memory image cannot fail
	}
	return b.Bytes()
}
