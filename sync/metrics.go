package sync

import (
	"time"

	"fieldsync/schema"
)

// Metrics receives the engine's measurements. The server implements it with Prometheus
// collectors; the engine calls it from a few places only (a push, a pull, a commit of the
// write path, a live delivery) and knows nothing of how it is exported. Engine.Metrics nil
// measures nothing.
type Metrics interface {
	// Pushed counts one push (WebSocket or HTTP): result "ok" (the batch was judged; see
	// its mutations), "refused" (the whole push was refused, e.g. a mutation without a
	// mid) or "error".
	// results holds the judgement of each mutation.
	Pushed(result string, results []Result)
	// Pulled counts one pull page, result as for Pushed.
	Pulled(result string)
	// Committed is one transaction of the write path: how many queued batches it took and
	// how long it ran, from begin until its batches were answered.
	Committed(batches int, took time.Duration)
	// Delivered is a live connection's pages being ready, took after the newest commit
	// that woke it was published.
	Delivered(took time.Duration)
}

// metrics returns the engine's Metrics, or one that measures nothing.
func (e *Engine) metrics() Metrics {
	if e.Metrics == nil {
		return noMetrics{}
	}
	return e.Metrics
}

type noMetrics struct{}

func (noMetrics) Pushed(string, []Result)      {}
func (noMetrics) Pulled(string)                {}
func (noMetrics) Committed(int, time.Duration) {}
func (noMetrics) Delivered(time.Duration)      {}

// outcome names the result of a whole request for Metrics: ok, refused (an answer the
// rules gave) or error (a fault).
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if _, ok := schema.AsError(err); ok {
		return "refused"
	}
	return "error"
}

// observeCommit reports a write-path transaction that took batches and began at start.
func (e *Engine) observeCommit(batches int, start time.Time) {
	e.metrics().Committed(batches, time.Since(start))
}

// QueueDepth is how many batches wait for the writer.
func (e *Engine) QueueDepth() int { return len(e.reqs) }

// Live counts the live subscriptions: technicians' devices and office feeds.
func (h *Hub) Live() (devices, office int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.all {
			office++
		} else {
			devices++
		}
	}
	return devices, office
}

// observeDelivery reports a live connection's pages ready, measured from the newest
// commit published (nothing before the first).
func (e *Engine) observeDelivery() {
	if at := e.Hub.at.Load(); at != 0 {
		e.metrics().Delivered(time.Since(time.Unix(0, at)))
	}
}
