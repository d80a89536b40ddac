package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	syncer "fieldsync/sync"
)

// maxRoundSteps bounds the pulls or pushes of one HTTP round, so that a server that always
// says has_more cannot keep the client looping.
const maxRoundSteps = 10000

// runHTTP is a session over the HTTP fallback: a round (pull until caught up, push what is
// due) at once, then, when live, every PollInterval or as soon as the outbox fills, until
// FallbackPeriod is over (time to try the WebSocket again) unless ForceHTTP.
func (s *session) runHTTP(ctx context.Context) (connected bool, err error) {
	c := s.c
	began := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		// Verify needs the WebSocket's verify message.
		for _, r := range append([]*request(nil), s.reqs...) {
			if r.verify {
				s.answer(r, errors.New("client: Verify needs the WebSocket; the HTTP fallback has no verify"))
			}
		}
		if s.syncing() {
			blobErr, err := c.httpRound(ctx)
			if err != nil {
				return connected, err
			}
			if !connected {
				connected = true
				c.setConnected(true)
			}
			if blobErr != nil {
				s.noteBlobError(blobErr)
				c.setError(blobErr)
			}
			s.ready, s.gen = 1, 1
			for _, r := range s.reqs {
				r.minGen = 1
			}
			s.finishRounds(true)
			c.synced()
		}
		if !s.live {
			return connected, nil
		}
		if !c.cfg.ForceHTTP && time.Since(began) > c.cfg.FallbackPeriod {
			return connected, nil
		}
		timer.Reset(c.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return connected, ctx.Err()
		case <-c.closing:
			return connected, ErrClosed
		case <-timer.C:
		case <-c.kick:
		case r := <-s.more:
			s.add(r)
		}
	}
}

// httpRound pulls until caught up, then pushes everything due.
func (c *Client) httpRound(ctx context.Context) (blobErr error, err error) {
	if err := c.httpPull(ctx); err != nil {
		return nil, err
	}
	pushed := false
	for range maxRoundSteps {
		batch, _, berr, err := c.nextBatch(ctx, c.batchCap(0), syncer.DefaultMaxFrameBytes)
		if err != nil {
			return blobErr, err
		}
		if berr != nil && blobErr == nil {
			blobErr = berr
		}
		if len(batch) == 0 {
			if pushed {
				// Bring down what the pushes made on the server (ticket events and the like).
				return blobErr, c.httpPull(ctx)
			}
			return blobErr, nil
		}
		var out syncer.Frame
		status, err := c.postJSON(ctx, "/mobile/v1/sync/push", map[string]any{"mutations": mutations(batch), "client_time": c.cfg.Now().UTC().Format(time.RFC3339Nano)}, &out)
		if err != nil {
			var rerr *remoteError
			if status == http.StatusRequestEntityTooLarge {
				c.halveBatch(len(batch))
				continue
			}
			if errors.As(err, &rerr) && status >= 400 && status < 500 && status != http.StatusTooManyRequests {
				if err := c.pushRefused(batch, rerr.Code, rerr.Message); err != nil {
					return blobErr, err
				}
				continue
			}
			return blobErr, err
		}
		if err := c.settle(batch, out.Results); err != nil {
			return blobErr, err
		}
		pushed = pushed || changedServer(out.Results)
	}
	return blobErr, nil
}

// httpPull pulls from the stored checkpoint until has_more is false.
func (c *Client) httpPull(ctx context.Context) error {
	for range maxRoundSteps {
		cp, err := c.st.checkpoint()
		if err != nil {
			return err
		}
		var out syncer.Frame
		_, err = c.postJSON(ctx, "/mobile/v1/sync/pull", map[string]any{"checkpoint": cp, "limit": c.cfg.PullLimit}, &out)
		var rerr *remoteError
		if errors.As(err, &rerr) && rerr.Code == "checkpoint_expired" {
			if err := c.wipeMirror(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		notes, err := c.st.applyChanges(out.Changes, out.Checkpoint)
		if err != nil {
			return err
		}
		c.notify(notes)
		if out.HasMore == nil || !*out.HasMore {
			return nil
		}
	}
	return errors.New("client: pull did not catch up")
}

// postJSON posts body as JSON to path and decodes a 2xx answer into out. An error answer
// becomes a *remoteError; 401 and 426 stop the client, a revoked device is wiped.
func (c *Client) postJSON(ctx context.Context, path string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("client: encoding %s: %w", path, err)
	}
	req, err := c.newRequest(ctx, http.MethodPost, path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if err := c.checkResponse(resp); err != nil {
		return resp.StatusCode, err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("client: decoding the answer to POST %s: %w", path, err)
	}
	return resp.StatusCode, nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	// The per-request timeout is the HTTP client's (Config.RequestTimeout).
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token())
	return req, nil
}

// checkResponse returns nil for a 2xx answer, else the error it carries.
func (c *Client) checkResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	rerr := decodeRemoteError(resp)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		c.stop(ErrUnauthorized)
		return ErrUnauthorized
	case resp.StatusCode == http.StatusUpgradeRequired:
		c.stop(ErrUpdateRequired)
		return ErrUpdateRequired
	case resp.StatusCode == http.StatusForbidden && (rerr.Code == "revoked" || rerr.Code == "device_revoked"):
		return c.revoke()
	}
	return rerr
}

// decodeRemoteError reads {code, message} from an error answer, at the top level or under
// "error"; it falls back on the HTTP status.
func decodeRemoteError(resp *http.Response) *remoteError {
	var body struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(data, &body)
	e := &remoteError{Code: body.Code, Message: body.Message}
	if e.Code == "" && len(body.Error) > 0 {
		var inner struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body.Error, &inner) == nil {
			e.Code, e.Message = inner.Code, inner.Message
		} else {
			json.Unmarshal(body.Error, &e.Message)
		}
	}
	if e.Code == "" {
		e.Code = fmt.Sprintf("http_%d", resp.StatusCode)
	}
	if e.Message == "" {
		e.Message = resp.Status
	}
	return e
}
