package sync

import (
	gosync "sync"
	"time"

	"fieldsync/schema"
)

// quotas bound what one user's devices may push: a bucket per user of mutations and of
// bytes of fields, each refilled at the hourly rate set in the settings and holding at most
// an hour's worth, so a phone that worked offline all day still pushes its day at once,
// while a runaway or hostile device cannot crowd out the others or fill the disk.
type quotas struct {
	mu    gosync.Mutex
	users map[string]*bucket
}

type bucket struct {
	muts, bytes float64
	at          time.Time
}

// take spends n mutations and size bytes of user's buckets, or reports how long to wait.
func (q *quotas) take(user string, n, size int, s *schema.Settings, now time.Time) error {
	perMuts, perBytes := float64(s.Int("push_mutations_per_hour")), float64(s.Int("push_bytes_per_hour"))
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.users == nil {
		q.users = map[string]*bucket{}
	}
	b := q.users[user]
	if b == nil {
		b = &bucket{muts: perMuts, bytes: perBytes, at: now}
		q.users[user] = b
	}
	hours := now.Sub(b.at).Hours()
	if hours > 0 {
		b.muts, b.bytes, b.at = min(perMuts, b.muts+hours*perMuts), min(perBytes, b.bytes+hours*perBytes), now
	}
	if float64(n) <= b.muts && float64(size) <= b.bytes {
		b.muts -= float64(n)
		b.bytes -= float64(size)
		return nil
	}
	wait := max((float64(n)-b.muts)/perMuts, (float64(size)-b.bytes)/perBytes)
	if float64(n) > perMuts || float64(size) > perBytes {
		return schema.Errorf(schema.CodeTooLarge, "this push is larger than the hourly quota (%d mutations, %d bytes): send smaller batches", int64(perMuts), int64(perBytes))
	}
	return schema.Errorf(schema.CodeRateLimited, "your devices pushed more than the hourly quota (%d mutations, %d bytes of fields): retry in %s",
		int64(perMuts), int64(perBytes), (time.Duration(wait*float64(time.Hour)) + time.Second).Truncate(time.Second))
}

// pushSize is what a batch costs against the byte quota: its fields as sent.
func pushSize(muts []Mutation) int {
	n := 0
	for _, m := range muts {
		for k, v := range m.Fields {
			n += len(k) + len(v)
		}
	}
	return n
}
