package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fieldsync/schema"
	"fmt"
	"io"
	"net/http"
	"strconv"

	syncer "fieldsync/sync"
)

// maxBlobAttempts bounds how often one upload starts over after the server disagreed on the
// offset (409).
const maxBlobAttempts = 4

// GetBlob returns the blob sha: from the local store when held, else downloaded from the
// server (checked against its hash) and kept.
func (c *Client) GetBlob(sha string) ([]byte, error) {
	if !schema.ValidBlobSum(sha) {
		return nil, fmt.Errorf("client: %q is not a lower-case hex SHA-256", sha)
	}
	if err := c.alive(); err != nil {
		return nil, err
	}
	data, _, ok, err := c.st.blob(sha)
	if err != nil || ok {
		return data, err
	}
	req, err := c.newRequest(context.Background(), http.MethodGet, "/mobile/v1/blobs/"+sha, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: downloading blob %s: %w", sha, err)
	}
	defer resp.Body.Close()
	if err := c.checkResponse(resp); err != nil {
		return nil, err
	}
	data, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("client: downloading blob %s: %w", sha, err)
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sha {
		return nil, fmt.Errorf("client: downloaded blob %s does not match its hash", sha)
	}
	if err := c.st.putBlob(sha, data, true); err != nil {
		return nil, err
	}
	return data, nil
}

// uploadBlobsOf makes sure the server holds every blob m references that this device made.
func (c *Client) uploadBlobsOf(ctx context.Context, m syncer.Mutation) error {
	for _, sha := range blobRefs(m.Fields) {
		data, uploaded, ok, err := c.st.blob(sha)
		if err != nil {
			return err
		}
		if !ok || uploaded {
			continue // not ours to upload, or done already
		}
		if err := c.uploadBlob(ctx, sha, data); err != nil {
			return err
		}
	}
	return nil
}

// uploadBlob uploads data resumably: HEAD says how much the server holds, PATCH appends the
// rest chunk by chunk. A 409 (the server holds another offset) starts over from a new HEAD.
func (c *Client) uploadBlob(ctx context.Context, sha string, data []byte) error {
	chunk := c.cfg.BlobChunkSize
	for range maxBlobAttempts {
		offset, whole, err := c.blobHead(ctx, sha)
		if err != nil {
			return err
		}
		if whole {
			return c.st.markUploaded(sha)
		}
		if offset < 0 || offset > int64(len(data)) {
			offset = 0
		}
		conflict := false
		// Each PATCH either advances the offset or ends the attempt, so this is bounded.
		for steps := 0; offset < int64(len(data)) && !conflict; steps++ {
			if steps > len(data)/chunk+2 {
				return fmt.Errorf("client: blob %s: the upload is not advancing", sha)
			}
			end := min(offset+int64(chunk), int64(len(data)))
			next, err := c.blobPatch(ctx, sha, offset, int64(len(data)), data[offset:end])
			var rerr *remoteError
			switch {
			case errors.As(err, &rerr) && rerr.Code == "http_409" || errors.Is(err, errConflict):
				conflict = true
			case err != nil:
				return err
			case next <= offset:
				return fmt.Errorf("client: blob %s: the server did not advance past offset %d", sha, offset)
			default:
				offset = next
			}
		}
		if !conflict {
			return c.st.markUploaded(sha)
		}
		c.log.Info("fieldsync client: blob offset conflict; resuming from HEAD", "sha", sha)
	}
	return fmt.Errorf("client: blob %s: the upload kept conflicting", sha)
}

// errConflict is a 409 answer to a PATCH: resume from a fresh HEAD.
var errConflict = errors.New("client: blob offset conflict")

// blobHead asks how much of sha the server holds.
func (c *Client) blobHead(ctx context.Context, sha string) (offset int64, whole bool, err error) {
	req, err := c.newRequest(ctx, http.MethodHead, "/mobile/v1/blobs/"+sha, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("client: HEAD blob %s: %w", sha, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return 0, true, nil
	case http.StatusNotFound:
		if h := resp.Header.Get("Upload-Offset"); h != "" {
			n, err := strconv.ParseInt(h, 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("client: HEAD blob %s: bad Upload-Offset %q", sha, h)
			}
			return n, false, nil
		}
		return 0, false, nil
	}
	return 0, false, c.checkResponse(resp)
}

// blobPatch appends chunk at offset and returns the offset the server now holds.
func (c *Client) blobPatch(ctx context.Context, sha string, offset, length int64, chunk []byte) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodPatch, "/mobile/v1/blobs/"+sha, bytes.NewReader(chunk))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	// Upload-Length on every chunk: required on the first, and the same value is accepted
	// on a resumed upload whose first chunk the server may not remember.
	req.Header.Set("Upload-Length", strconv.FormatInt(length, 10))
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: PATCH blob %s at %d: %w", sha, offset, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return 0, errConflict
	}
	if err := c.checkResponse(resp); err != nil {
		return 0, err
	}
	if h := resp.Header.Get("Upload-Offset"); h != "" {
		if n, err := strconv.ParseInt(h, 10, 64); err == nil {
			return n, nil
		}
	}
	return offset + int64(len(chunk)), nil
}
