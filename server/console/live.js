// live.js: the console's live feed (GET /api/v1/live, server-sent events read with fetch so
// the bearer token goes in a header as on every other call). It tells the router what
// changed, keeps the server's clock for deadlines, and turns a ticket red when its deadline
// passes while the page is open. docs/console.md, "Live".
import { session } from './api.js';
import { badge } from './ui.js';

let skew = 0; // server clock minus this browser's, from the feed's hello and pings
let abort = null;
let timer = null;

// serverNow is the server's time now, as far as this page knows it.
export function serverNow() { return Date.now() + skew; }

// deadline is the deadline that matters now (RFC 3339) or '': the response until accepted,
// then the arrival for on-site work; none once the work is done.
export function deadline(t) {
  if (['completed', 'sheet_received', 'followed_up', 'closed', 'cancelled'].includes(t.status)) return '';
  if (!t.accepted_at) return t.due_response_at || '';
  return t.service_mode === 'onsite' && !t.arrived_at ? (t.due_arrival_at || '') : '';
}

// markOverdue turns every element whose data-due has passed red: a row gets the class
// overdue, and the element's [data-overdue-slot] (or the element) a 超时 Overdue badge.
export function markOverdue(root = document) {
  const now = serverNow();
  for (const el of root.querySelectorAll('[data-due]')) {
    const due = Date.parse(el.dataset.due);
    if (Number.isNaN(due) || due > now || el.classList.contains('overdue')) continue;
    el.classList.add('overdue');
    const slot = el.querySelector('[data-overdue-slot]') || el;
    if (!slot.querySelector('.badge.danger')) slot.append(' ', badge('超时 Overdue', 'danger'));
  }
}

// startLive opens the feed (once) and keeps it open while the session lasts: onChanges(refs,
// more) for each batch of changes, onEnd(code) when the server ended the session.
export function startLive({ onChanges, onEnd, onState }) {
  if (abort) return;
  abort = new AbortController();
  const { signal } = abort;
  clearInterval(timer);
  timer = setInterval(() => markOverdue(), 1000);
  (async () => {
    let failures = 0;
    while (!signal.aborted && session.token) {
      let ended = false;
      try {
        const res = await fetch('/api/v1/live', { headers: { Authorization: 'Bearer ' + session.token, Accept: 'text/event-stream' }, signal });
        if (res.status === 401) { onEnd?.('unauthenticated'); return; }
        if (!res.ok) throw new Error('HTTP ' + res.status);
        onState?.(true);
        failures = 0;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let name = '';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) name = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            let d = {};
            try { d = JSON.parse(data || '{}'); } catch { continue; }
            if (d.server_time) skew = Date.parse(d.server_time) - Date.now();
            if (name === 'changes') onChanges(d.changes || [], !!d.more);
            else if (name === 'hello' && failures === 0) markOverdue();
            else if (name === 'end' && ['unauthenticated', 'forbidden'].includes(d.code)) { ended = true; onEnd?.(d.code, d.message); }
          }
        }
      } catch { /* network: try again */ }
      onState?.(false);
      if (ended || signal.aborted) return;
      failures++;
      await new Promise((r) => setTimeout(r, Math.min(30000, 1000 * 2 ** Math.min(failures, 5))));
      // A reconnect may have missed changes: read the page again.
      if (!signal.aborted) onChanges([], true);
    }
  })();
}

// stopLive closes the feed (logout).
export function stopLive() {
  abort?.abort();
  abort = null;
  clearInterval(timer);
}
