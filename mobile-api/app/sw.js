// The field app's service worker: it keeps the app shell in a cache named by the shell's
// version, so the app starts with no network. The server writes the version (a hash of the
// embedded files) and the file list into this file at start; a binary with a changed app thus
// serves a changed sw.js, the browser installs the new worker, and the page offers to reload.
// Only the shell is cached: data lives in IndexedDB, and /mobile/v1 is never cached here.
const VERSION = '__SHELL_VERSION__';
const SHELL = ["__SHELL_FILES__"];
const CACHE = 'fieldsync-app-' + VERSION;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL.map((f) => new Request('./' + f, { cache: 'reload' })))));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const k of await caches.keys()) if (k.startsWith('fieldsync-app-') && k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

// The page asks the waiting worker to take over when the technician taps "reload".
self.addEventListener('message', (event) => {
  if (event.data === 'skipWaiting') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith(new URL('./', self.location).pathname)) return;
  const path = url.pathname.slice(new URL('./', self.location).pathname.length);
  if (path === 'sw.js') return;
  // The shell from the cache first (an offline start); a navigation to any app path gets the index.
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(req.mode === 'navigate' ? './' : req, { ignoreSearch: true });
    if (hit) return hit;
    return fetch(req);
  })());
});
