// fieldsync.js: a client of fieldsync's sync protocol v1 for browsers (docs/sync-protocol.md),
// the counterpart of the Go SDK (sync/client). It holds no screen code, so any web front end
// (or a mini-program with an IndexedDB shim) can reuse it.
//
// Local state lives in one IndexedDB database:
//   records    the mirror of the device's scope, [entity, id] -> {entity, id, version, data}
//   meta       key -> value: token, device_id, user, checkpoint, last_sync
//   outbox     pending mutations in the order they were made (seq), each with its mid
//   rejections final rejections, kept until the technician dismisses them
//   blobs      images this device made (to upload) or fetched, by SHA-256
//
// Rules it keeps, as the Go SDK does: a mutation is in IndexedDB before mutate() resolves; a
// checkpoint is stored in the same transaction as the changes it covers; a mutation leaves the
// outbox only in the transaction that stores its result; a record's mutations are never
// reordered; blobs are uploaded (resumably) before the push of a mutation naming them; every
// final rejection is kept and announced, never retried and never dropped.

const PROTOCOL = 1;
const SCHEMA_VERSION = 1;
const SUBPROTOCOL = 'fieldsync.v1';
const STORES = ['records', 'meta', 'outbox', 'rejections', 'blobs'];
const MIN_BACKOFF = 1000;
const MAX_BACKOFF = 30000;
const REQUEST_TIMEOUT = 30000;
const FALLBACK_AFTER = 3; // WebSocket failures, while HTTP reaches the server, before polling
const FALLBACK_PERIOD = 5 * 60000;
const POLL_EVERY = 10000;
const RETRY_LIMIT = 20; // attempts of a retryable rejection before it needs a person
const BLOB_CHUNK = 256 * 1024;
const DEFAULT_MAX_BLOB = 5 << 20;
const TRANSIENT = new Set(['internal', 'unavailable', 'rate_limited', 'timeout', 'busy']);

/** An error with a code a screen can translate, and the numbers it needs. */
export class FieldSyncError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.code = code;
    Object.assign(this, extra);
  }
}

// ---- IndexedDB in promises ----

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDB(name) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => {
      const db = r.result;
      const rec = db.createObjectStore('records', { keyPath: ['entity', 'id'] });
      rec.createIndex('entity', 'entity');
      db.createObjectStore('meta', { keyPath: 'key' });
      const out = db.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true });
      out.createIndex('mid', 'mid', { unique: true });
      db.createObjectStore('rejections', { keyPath: 'mid' });
      db.createObjectStore('blobs', { keyPath: 'sha' });
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.onblocked = () => reject(new FieldSyncError('blocked', 'the local database is open in an older tab'));
  });
}

/** Runs fn in one transaction over stores and resolves with its result once committed. */
function txn(db, stores, mode, fn) {
  return new Promise((resolve, reject) => {
    const t = db.transaction(stores, mode, { durability: 'strict' });
    const s = Object.fromEntries(stores.map((n) => [n, t.objectStore(n)]));
    let result;
    t.oncomplete = () => resolve(result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new FieldSyncError('aborted', 'local transaction aborted'));
    Promise.resolve().then(() => fn(s)).then((v) => { result = v; }, (e) => { try { t.abort(); } catch { /* done */ } reject(e); });
  });
}

// ---- small helpers ----

/** A UUIDv7: time-ordered, as the protocol asks for ids made on the device. */
export function newID() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) { b[i] = ms % 256; ms = Math.floor(ms / 256); }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Lower-case hex SHA-256 of bytes, by WebCrypto (a secure context: HTTPS or localhost). */
export async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) {
    throw new FieldSyncError('insecure_context', 'WebCrypto needs HTTPS (or localhost)');
  }
  const d = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** The image type of bytes by their first bytes, as the server sniffs: png, jpeg, webp or ''. */
export function imageType(b) {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'image/png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length >= 12 && String.fromCharCode(...b.slice(0, 4)) === 'RIFF' && String.fromCharCode(...b.slice(8, 12)) === 'WEBP') return 'image/webp';
  return '';
}

/** Delay before attempt n: MIN doubled n-1 times, capped, with jitter from its upper half. */
export function backoff(n, min = MIN_BACKOFF, max = MAX_BACKOFF) {
  const d = Math.min(max, min * 2 ** Math.max(0, Math.min(n, 32) - 1));
  return d / 2 + Math.random() * (d / 2);
}

const utf8 = new TextEncoder();
const isBlobSum = (s) => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);

/** The blobs a mutation names: 64-hex values of fields called *_blob. */
function blobRefs(fields) {
  return Object.entries(fields || {}).filter(([k, v]) => k.endsWith('_blob') && isBlobSum(v)).map(([, v]) => v).sort();
}

function toBase64(buf) {
  const b = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return btoa(s);
}

/**
 * Canonical JSON as the server writes it (schema.CanonicalJSON): keys sorted, no white
 * space, whole numbers plainly, strings escaped only where JSON must.
 */
export function canonicalJSON(v) {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'boolean': return String(v);
    case 'string': return JSON.stringify(v);
    case 'number':
      if (!Number.isSafeInteger(v)) throw new FieldSyncError('validation', `number ${v} is not a whole number`);
      return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(',')}]`;
  return `{${Object.keys(v).filter((k) => v[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJSON(v[k])}`).join(',')}}`;
}

/** The fields a device signs (schema.SheetDeviceFields) and the image fields. */
export const SHEET_DEVICE_FIELDS = ['id', 'ticket_id', 'supersedes_id', 'arrived_at', 'departed_at', 'fault_symptoms', 'inspection_record',
  'handling_result', 'parts', 'labour_fen', 'parts_fen', 'shipping_fen', 'rating', 'rating_comment', 'signer_name', 'absent_reason', 'location'];
const SHEET_BLOB_FIELDS = ['signature_blob', 'stamp_blob', 'technician_signature_blob'];

const emptyValue = (v) => v === undefined || v === null || v === '' || v === 0 || v === false ||
  (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v).length === 0);

/** The canonical form of a sheet's device fingerprint (schema.SheetDeviceCanonical). */
export function sheetDeviceCanonical(sheet) {
  const content = {};
  for (const k of SHEET_DEVICE_FIELDS) content[k] = emptyValue(sheet[k]) ? null : sheet[k];
  const images = {};
  for (const k of SHEET_BLOB_FIELDS) if (typeof sheet[k] === 'string' && sheet[k] !== '') images[k] = sheet[k];
  return canonicalJSON({ format: 1, sheet: content, images });
}

export async function sheetDeviceFingerprint(sheet) {
  return sha256Hex(utf8.encode(sheetDeviceCanonical(sheet)));
}

/** The message a device signs (schema.DeviceSignedMessage). */
export function deviceSignedMessage(fingerprint, deviceTime, prevSignature) {
  return canonicalJSON({ purpose: 'fieldsync device sheet signature', fingerprint, device_time: deviceTime, prev_signature: prevSignature || null });
}

function wire(row) {
  const m = { mid: row.mid, entity: row.entity, id: row.id, op: row.op, base_version: row.base_version };
  if (row.fields && Object.keys(row.fields).length) m.fields = row.fields;
  if (row.action) m.action = row.action;
  if (row.at) m.at = row.at;
  return m;
}

/** What the screens see of a record: the server state with pending local edits on top. */
function overlay(view, m, predict) {
  let r = view.get(m.id);
  switch (m.op) {
    case 'create':
      if (!r) { r = { entity: m.entity, id: m.id, version: 0, data: { id: m.id } }; view.set(m.id, r); }
      r.data = { ...r.data, ...m.fields };
      break;
    case 'update':
      if (r) r.data = { ...r.data, ...m.fields };
      break;
    case 'action':
      if (r && predict) r.data = predict(m.entity, r.data, m.action, m.fields || {}) || r.data;
      break;
    case 'delete':
      view.delete(m.id);
      return;
  }
  if (r) { r.pending = true; (r.pendingMids ||= []).push(m.mid); }
}

/**
 * FieldSync is one device's sync client. Events (EventTarget): 'change' {detail: {entity, id,
 * op}} after local data changed; 'state' after the connection state changed; 'rejected'
 * {detail: rejection} for every final rejection; 'results' {detail: [{mid, status, ...}]}.
 */
export class FieldSync extends EventTarget {
  /**
   * @param {object} cfg
   * @param {string} [cfg.base] the server's origin ('' = this page's)
   * @param {string} [cfg.dbName] the IndexedDB database
   * @param {string} [cfg.appVersion]
   * @param {function} [cfg.predict] (entity, data, action, fields) => data: the state a pending
   *   workflow action will probably lead to, so the screens can go on offline
   * @param {boolean} [cfg.forceHTTP] use the HTTP fallback only
   */
  constructor(cfg = {}) {
    super();
    this.base = cfg.base || '';
    this.dbName = cfg.dbName || 'fieldsync';
    this.appVersion = cfg.appVersion || '1';
    this.predict = cfg.predict || null;
    this.forceHTTP = !!cfg.forceHTTP;
    this.db = null;
    this.meta = {};
    this.st = { connected: false, transport: '', pending: 0, lastSync: '', lastError: '', stopped: '', running: false };
    this.wsFailures = 0;
    this.fallbackSince = 0;
    this.batchCap = 0;
    this.session = null;
    this.wake = null;
    this.verifies = new Map();
  }

  /** Opens the local database; call once before anything else. */
  async open() {
    this.db = await openDB(this.dbName);
    const rows = await txn(this.db, ['meta'], 'readonly', (s) => req(s.meta.getAll()));
    this.meta = Object.fromEntries(rows.map((r) => [r.key, r.value]));
    if (!this.meta.device_id) await this.setMeta({ device_id: newID() });
    this.st.lastSync = this.meta.last_sync || '';
    await this.countPending();
    if (typeof window !== 'undefined') {
      window.addEventListener('online', () => this.kick());
    }
    return this;
  }

  get deviceID() { return this.meta.device_id; }
  get user() { return this.meta.user || null; }
  get token() { return this.meta.token || ''; }
  get loggedIn() { return !!this.meta.token; }
  /** {connected, transport, pending, lastSync, lastError, stopped, running} */
  get state() { return { ...this.st }; }

  async setMeta(kv) {
    await txn(this.db, ['meta'], 'readwrite', (s) => { for (const [key, value] of Object.entries(kv)) s.meta.put({ key, value }); });
    Object.assign(this.meta, kv);
  }

  setState(patch) {
    Object.assign(this.st, patch);
    this.dispatchEvent(new CustomEvent('state', { detail: this.state }));
  }

  changed(entity, id, op) { this.dispatchEvent(new CustomEvent('change', { detail: { entity, id, op } })); }

  // ---- login ----

  /**
   * Logs in as a device: the token is per device, the device id stays the same for this
   * install, and a login after the token expired keeps the outbox. Logging in as someone else
   * while this device holds unsent work of the previous user is refused.
   */
  async login(username, password, deviceName = '') {
    const prev = this.meta.user;
    if (prev && prev.username && prev.username !== username && (await this.localWork()).outbox.length) {
      throw new FieldSyncError('outbox_not_empty', `this phone holds unsent work of ${prev.username}`, { user: prev.username });
    }
    const key = await this.deviceKey();
    const res = await fetch(this.base + '/mobile/v1/auth/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password, device_id: this.deviceID, device_name: deviceName || 'field app', ...(key ? { public_key: key.spki } : {}) }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = body.error || {};
      throw new FieldSyncError(e.code || `http_${res.status}`, e.message || res.statusText, { field: e.field, status: res.status });
    }
    if (prev && prev.id && body.user && prev.id !== body.user.id) await this.wipe(true); // another person: nothing of the last one stays
    const user = { ...(body.user || {}), username };
    await this.setMeta({ token: body.token, expires_at: body.expires_at, server_device: body.device, user });
    this.setState({ stopped: '', lastError: '' });
    return user;
  }

  // ---- the device key and sheets signed on the device (docs/feedback-sheets.md) ----

  /**
   * The device's ECDSA P-256 key pair, made once per install: the private key is not
   * extractable and stays in IndexedDB. null where WebCrypto is missing (not HTTPS): the
   * device then signs nothing and logs in as an app without keys.
   */
  async deviceKey() {
    if (this.meta.device_key) return this.meta.device_key;
    if (!globalThis.crypto?.subtle) return null;
    const kp = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const spki = toBase64(await crypto.subtle.exportKey('spki', kp.publicKey));
    const key = { privateKey: kp.privateKey, publicKey: kp.publicKey, spki };
    await this.setMeta({ device_key: key });
    return key;
  }

  /**
   * Queues the sign of a feedback sheet, signed here, offline: the device signs the sheet as
   * it holds it now (its device fingerprint) with its clock and its previous signature, and
   * the signature goes with the sign. Resolves with the mutation's mid.
   */
  async signSheet(id) {
    const cur = await this.record('feedback_sheet', id);
    if (!cur) throw new FieldSyncError('not_found', `feedback sheet ${id} is not on this device`);
    const key = this.meta.device_key;
    if (!key) return this.mutate('feedback_sheet', id, 'action', cur.version || 0, null, 'sign');
    const deviceTime = new Date().toISOString();
    const prev = this.meta.device_last_signature || '';
    const fp = await sheetDeviceFingerprint(cur.data);
    const sig = toBase64(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey, utf8.encode(deviceSignedMessage(fp, deviceTime, prev))));
    const fields = { device_time: deviceTime, device_signature: sig };
    if (prev) fields.device_prev_signature = prev;
    return this.mutate('feedback_sheet', id, 'action', cur.version || 0, fields, 'sign', { device_last_signature: sig });
  }

  // ---- the local store ----

  /** What hello tells the server of the outbox: {pending, pending_since} (the oldest's time). */
  async outboxReport() {
    return txn(this.db, ['outbox'], 'readonly', async (s) => {
      const pending = await req(s.outbox.count());
      const first = pending ? await req(s.outbox.openCursor()) : null;
      return first ? { pending, pending_since: first.value.at } : { pending };
    });
  }

  async countPending() {
    const n = await txn(this.db, ['outbox'], 'readonly', (s) => req(s.outbox.count()));
    if (n !== this.st.pending) this.setState({ pending: n });
    return n;
  }

  /** The app's view of every record of entity: server state with pending edits applied. */
  async records(entity) {
    const [held, pending] = await txn(this.db, ['records', 'outbox'], 'readonly', async (s) => [
      await req(s.records.index('entity').getAll(entity)), await req(s.outbox.getAll())]);
    const view = new Map(held.map((r) => [r.id, { ...r }]));
    for (const m of pending) if (m.entity === entity) overlay(view, m, this.predict);
    return [...view.values()];
  }

  /** One record as the app sees it, or null. */
  async record(entity, id) {
    return (await this.records(entity)).find((r) => r.id === id) || null;
  }

  /** The pending mutations, oldest first. */
  async outbox() {
    return txn(this.db, ['outbox'], 'readonly', (s) => req(s.outbox.getAll()));
  }

  /** Final rejections, oldest first. */
  async rejections() {
    const all = await txn(this.db, ['rejections'], 'readonly', (s) => req(s.rejections.getAll()));
    return all.sort((a, b) => (a.rejected_at < b.rejected_at ? -1 : 1));
  }

  async dismissRejection(mid) {
    await txn(this.db, ['rejections'], 'readwrite', (s) => s.rejections.delete(mid));
    this.changed('', '', 'dismissed');
  }

  /**
   * Queues a mutation. It is stored in IndexedDB when the promise resolves (the screen may
   * say "saved"); it goes to the server as soon as there is a connection.
   */
  async mutate(entity, id, op, baseVersion, fields = null, action = '', meta = null) {
    if (!this.loggedIn) throw new FieldSyncError('unauthenticated', 'log in first');
    const row = { mid: newID(), entity, id, op, base_version: baseVersion || 0, at: new Date().toISOString(), attempts: 0, next_at: 0, last_error: '' };
    if (fields && Object.keys(fields).length) row.fields = fields;
    if (action) row.action = action;
    // meta (key -> value) is stored in the same transaction as the mutation.
    await txn(this.db, ['outbox', 'meta'], 'readwrite', async (s) => {
      await req(s.outbox.add(row));
      for (const [key, value] of Object.entries(meta || {})) s.meta.put({ key, value });
    });
    Object.assign(this.meta, meta || {});
    await this.countPending();
    this.changed(entity, id, op === 'create' ? 'upsert' : op);
    this.kick();
    return row.mid;
  }

  /** The largest blob the server takes, from the synced setting (or the default). */
  async maxBlobBytes() {
    const s = await txn(this.db, ['records'], 'readonly', (st) => req(st.records.get(['setting', 'blob_max_bytes'])));
    const v = s && s.data && s.data.value;
    return typeof v === 'number' && v > 0 ? v : DEFAULT_MAX_BLOB;
  }

  /**
   * Keeps an image for upload and returns its SHA-256, to be named in a *_blob field. Refused
   * here, before anything is queued, when it is not PNG, JPEG or WebP or over the size limit.
   */
  async putBlob(bytes) {
    const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    if (!imageType(b)) throw new FieldSyncError('unsupported_media', 'not a PNG, JPEG or WebP image');
    const max = await this.maxBlobBytes();
    if (b.length === 0) throw new FieldSyncError('validation', 'the image is empty');
    if (b.length > max) throw new FieldSyncError('too_large', `the image is ${b.length} bytes; at most ${max}`, { size: b.length, max });
    const sha = await sha256Hex(b);
    await txn(this.db, ['blobs'], 'readwrite', async (s) => {
      const held = await req(s.blobs.get(sha));
      if (!held) s.blobs.put({ sha, data: b, uploaded: false, type: imageType(b) });
    });
    return sha;
  }

  /** The bytes of blob sha: from this device, else downloaded (checked against the hash). */
  async getBlob(sha) {
    const held = await txn(this.db, ['blobs'], 'readonly', (s) => req(s.blobs.get(sha)));
    if (held) return held.data;
    const res = await this.fetch('/mobile/v1/blobs/' + sha);
    const b = new Uint8Array(await res.arrayBuffer());
    if ((await sha256Hex(b)) !== sha) throw new FieldSyncError('hash_mismatch', `downloaded blob ${sha} does not match its hash`);
    await txn(this.db, ['blobs'], 'readwrite', (s) => s.blobs.put({ sha, data: b, uploaded: true, type: imageType(b) }));
    return b;
  }

  /** What signing out would lose: pending mutations, images not uploaded, unread rejections. */
  async localWork() {
    return txn(this.db, ['outbox', 'blobs', 'rejections'], 'readonly', async (s) => ({
      outbox: await req(s.outbox.getAll()),
      blobs: (await req(s.blobs.getAll())).filter((b) => !b.uploaded).map((b) => ({ sha: b.sha, size: b.data.length })),
      rejections: await req(s.rejections.getAll()),
    }));
  }

  /**
   * Forgets this phone's data: the mirror, the outbox, the rejections, the images and the
   * login. Refused while the outbox holds work unless force (the screen warned first). The
   * device id stays: it is this install's.
   */
  async signOut(force = false) {
    const work = await this.localWork();
    if (!force && (work.outbox.length || work.blobs.length)) {
      throw new FieldSyncError('outbox_not_empty', `${work.outbox.length} changes and ${work.blobs.length} images are not on the server yet`, { work });
    }
    this.stop();
    await this.wipe(true);
  }

  async wipe(all) {
    const device = this.meta.device_id;
    const key = this.meta.device_key;
    await txn(this.db, STORES, 'readwrite', (s) => {
      s.records.clear();
      if (all) { s.outbox.clear(); s.rejections.clear(); s.blobs.clear(); }
      s.meta.clear();
      s.meta.put({ key: 'device_id', value: device });
      if (key) s.meta.put({ key: 'device_key', value: key }); // the device's, not the user's: kept; its chain restarts
    });
    this.meta = key ? { device_id: device, device_key: key } : { device_id: device };
    this.setState({ lastSync: '', pending: await this.countPending() });
    this.changed('', '', 'wiped');
  }

  /** sha256 over "entity\nid\nversion\n" of every held record sorted by entity then id. */
  async digest() {
    const [all, cp] = await txn(this.db, ['records', 'meta'], 'readonly', async (s) => [
      await req(s.records.getAll()), await req(s.meta.get('checkpoint'))]);
    all.sort((a, b) => (a.entity !== b.entity ? (a.entity < b.entity ? -1 : 1) : (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
    const text = all.map((r) => `${r.entity}\n${r.id}\n${r.version}\n`).join('');
    return { count: all.length, hash: await sha256Hex(new TextEncoder().encode(text)), checkpoint: cp ? cp.value : '' };
  }

  // ---- applying what the server sends ----

  /** Applies one page of changes and stores its checkpoint in the same transaction. */
  async applyChanges(changes, checkpoint) {
    await txn(this.db, ['records', 'meta'], 'readwrite', async (s) => {
      for (const ch of changes || []) {
        if (ch.op === 'upsert') {
          const held = await req(s.records.get([ch.entity, ch.id]));
          if (!held || held.version <= ch.version) s.records.put({ entity: ch.entity, id: ch.id, version: ch.version, data: ch.record });
        } else if (ch.op === 'delete' || ch.op === 'evict') {
          s.records.delete([ch.entity, ch.id]); // pending mutations on it stay in the outbox
        } else {
          throw new FieldSyncError('bad_change', `change of ${ch.entity}/${ch.id} has unknown op ${ch.op}`);
        }
      }
      if (checkpoint != null) s.meta.put({ key: 'checkpoint', value: checkpoint });
    });
    if (checkpoint != null) this.meta.checkpoint = checkpoint;
    for (const ch of changes || []) this.changed(ch.entity, ch.id, ch.op);
  }

  async caughtUp() {
    const now = new Date().toISOString();
    await this.setMeta({ last_sync: now });
    this.setState({ lastSync: now });
  }

  /** Settles a pushed batch with its results in one transaction. */
  async applyResults(batch, results) {
    const byMid = new Map(batch.map((r, i) => [r.mid, i]));
    const rejected = [];
    const done = [];
    await txn(this.db, ['outbox', 'records', 'rejections'], 'readwrite', async (s) => {
      for (let k = 0; k < results.length; k++) {
        const res = results[k];
        let i = byMid.get(res.mid);
        if (i === undefined) { if (res.mid || k >= batch.length) continue; i = k; }
        const row = batch[i];
        const status = res.status;
        if (status === 'applied' || status === 'merged' || status === 'duplicate') {
          s.outbox.delete(row.seq);
          if (res.record) {
            const version = res.version || res.record.version || 0;
            const held = await req(s.records.get([row.entity, row.id]));
            if (!held || held.version <= version) s.records.put({ entity: row.entity, id: row.id, version, data: res.record });
          }
          done.push({ ...res, entity: row.entity, id: row.id });
        } else if (status === 'rejected' && !res.retryable) {
          s.outbox.delete(row.seq);
          const rej = { ...wire(row), code: res.code || '', message: res.message || '', field: res.field || '', rejected_at: new Date().toISOString() };
          if (res.record && res.code !== 'out_of_scope') {
            rej.record = res.record;
            const held = await req(s.records.get([row.entity, row.id]));
            const version = Math.max(res.version || 0, res.record.version || 0);
            if (held && held.version <= version) s.records.put({ entity: row.entity, id: row.id, version, data: res.record });
          }
          s.rejections.put(rej);
          rejected.push(rej);
        } else {
          const gaveUp = this.deferRow(s, row, `${res.code || status}: ${res.message || ''}`);
          if (gaveUp) rejected.push(gaveUp);
        }
      }
    });
    await this.countPending();
    for (const r of done) this.changed(r.entity, r.id, 'upsert');
    if (done.length) this.dispatchEvent(new CustomEvent('results', { detail: done }));
    for (const r of rejected) {
      this.changed(r.entity, r.id, 'rejected');
      this.dispatchEvent(new CustomEvent('rejected', { detail: r }));
    }
    return results.some((r) => r.status === 'applied' || r.status === 'merged');
  }

  /**
   * Puts off a mutation's next attempt, inside the caller's transaction s. Past RETRY_LIMIT it
   * becomes a rejection a person sees instead (returned, to announce after the commit).
   */
  deferRow(s, row, why) {
    const attempts = (row.attempts || 0) + 1;
    if (attempts >= RETRY_LIMIT) {
      s.outbox.delete(row.seq);
      const rej = { ...wire(row), code: 'retry_limit', message: why, field: '', rejected_at: new Date().toISOString() };
      s.rejections.put(rej);
      return rej;
    }
    s.outbox.put({ ...row, attempts, next_at: Date.now() + backoff(attempts), last_error: why });
    return null;
  }

  async deferRows(rows, why) {
    const gaveUp = await txn(this.db, ['outbox', 'rejections'], 'readwrite', async (s) => {
      const out = [];
      for (const r of rows) {
        const cur = await req(s.outbox.get(r.seq));
        const rej = cur && this.deferRow(s, cur, why);
        if (rej) out.push(rej);
      }
      return out;
    });
    await this.countPending();
    for (const r of gaveUp) {
      this.changed(r.entity, r.id, 'rejected');
      this.dispatchEvent(new CustomEvent('rejected', { detail: r }));
    }
  }

  /** A mutation the server refuses as a frame error even alone: a final rejection. */
  async rejectLocally(row, code, message) {
    const rej = { ...wire(row), code, message, field: '', rejected_at: new Date().toISOString() };
    await txn(this.db, ['outbox', 'rejections'], 'readwrite', (s) => { s.outbox.delete(row.seq); s.rejections.put(rej); });
    await this.countPending();
    this.changed(row.entity, row.id, 'rejected');
    this.dispatchEvent(new CustomEvent('rejected', { detail: rej }));
  }

  // ---- what to push next ----

  /**
   * The next batch: due mutations in outbox order (one waiting for its retry holds back the
   * later ones on the same record), at most maxCount and about maxBytes, their blobs
   * uploaded. A mutation whose blob would not upload is deferred and ends the batch.
   */
  async nextBatch(maxCount, maxBytes) {
    const rows = await this.outbox();
    const now = Date.now();
    const held = new Set();
    const due = [];
    let wake = 0;
    for (const r of rows) {
      const k = r.entity + '/' + r.id;
      if (held.has(k)) continue;
      if (r.next_at > now) { held.add(k); wake = wake ? Math.min(wake, r.next_at) : r.next_at; continue; }
      due.push(r);
    }
    const batch = [];
    let size = 128;
    for (const r of due) {
      if (batch.length >= Math.max(1, maxCount)) break;
      size += utf8.encode(JSON.stringify(wire(r))).length + 1; // the frame limit is in bytes
      if (maxBytes && size > maxBytes && batch.length) break;
      try {
        await this.uploadBlobsOf(r);
      } catch (e) {
        await this.deferRows([r], 'blob upload: ' + e.message);
        this.setState({ lastError: e.message });
        wake = wake ? Math.min(wake, Date.now() + MIN_BACKOFF) : Date.now() + MIN_BACKOFF;
        break;
      }
      batch.push(r);
    }
    return { batch, wake };
  }

  async uploadBlobsOf(row) {
    for (const sha of blobRefs(row.fields)) {
      const b = await txn(this.db, ['blobs'], 'readonly', (s) => req(s.blobs.get(sha)));
      if (!b || b.uploaded) continue; // not ours to upload, or done already
      await this.uploadBlob(sha, b.data);
      await txn(this.db, ['blobs'], 'readwrite', (s) => s.blobs.put({ ...b, uploaded: true }));
    }
  }

  /** Resumable upload: HEAD says how much the server holds, PATCH appends the rest. */
  async uploadBlob(sha, data) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const head = await this.fetch('/mobile/v1/blobs/' + sha, { method: 'HEAD' }, [404]);
      if (head.status === 200) return;
      let offset = parseInt(head.headers.get('Upload-Offset') || '0', 10);
      if (!(offset >= 0 && offset <= data.length)) offset = 0;
      let conflict = false;
      for (let steps = 0; offset < data.length && !conflict; steps++) {
        if (steps > data.length / BLOB_CHUNK + 2) throw new FieldSyncError('upload_stuck', `blob ${sha}: the upload is not advancing`);
        const end = Math.min(offset + BLOB_CHUNK, data.length);
        const res = await this.fetch('/mobile/v1/blobs/' + sha, {
          method: 'PATCH', body: data.slice(offset, end),
          headers: { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset), 'Upload-Length': String(data.length) },
        }, [409]);
        if (res.status === 409) { conflict = true; continue; }
        const next = parseInt(res.headers.get('Upload-Offset') || String(end), 10);
        if (next <= offset) throw new FieldSyncError('upload_stuck', `blob ${sha}: the server did not advance past ${offset}`);
        offset = next;
      }
      if (!conflict) return;
    }
    throw new FieldSyncError('upload_conflict', `blob ${sha}: the upload kept conflicting`);
  }

  /** An authenticated request; throws FieldSyncError unless ok (or its status is allowed). */
  async fetch(path, init = {}, allow = []) {
    const headers = { ...(init.headers || {}), Authorization: 'Bearer ' + this.token };
    let res;
    try {
      res = await fetch(this.base + path, { ...init, headers, cache: 'no-store' });
    } catch (e) {
      throw new FieldSyncError('offline', 'no connection to the server: ' + e.message);
    }
    if (res.ok || allow.includes(res.status)) return res;
    const body = await res.json().catch(() => ({}));
    const e = body.error || {};
    if (res.status === 401) this.unauthorized();
    throw new FieldSyncError(e.code || `http_${res.status}`, e.message || res.statusText, { field: e.field, status: res.status, record: e.record });
  }

  /** GET path as JSON with the device token (e.g. /mobile/v1/months/2026-11/me). */
  async getJSON(path) { return (await this.fetch(path)).json(); }

  unauthorized() {
    this.stopWith('unauthorized');
  }

  // ---- the sync loop ----

  /** Runs the background loop: connect, pull live, push as the outbox fills, reconnect. */
  start() {
    if (this.st.running || !this.loggedIn) return;
    this.setState({ running: true, stopped: '' });
    this.loop();
  }

  /** Stops the loop and closes the connection. */
  stop() {
    this.setState({ running: false });
    this.session?.close(1000);
    this.kick();
  }

  stopWith(reason) {
    this.setState({ stopped: reason, running: false, connected: false });
    this.session?.close(1000);
    this.kick();
  }

  /** Wakes the loop (new work, the network came back) or the live session's pusher. */
  kick() {
    if (this.session) this.session.kick();
    if (this.wake) { const w = this.wake; this.wake = null; w(); }
  }

  async loop() {
    let failures = 0;
    while (this.st.running && !this.st.stopped) {
      let connected = false;
      try {
        connected = this.useHTTP() ? await this.runHTTP() : await this.runWS();
      } catch (e) {
        this.setState({ lastError: e.message || String(e) });
      }
      this.setState({ connected: false, transport: '' });
      if (!this.st.running || this.st.stopped) break;
      failures = connected ? 0 : failures + 1;
      await new Promise((resolve) => {
        const t = setTimeout(() => { this.wake = null; resolve(); }, backoff(failures));
        this.wake = () => { clearTimeout(t); resolve(); };
      });
    }
  }

  useHTTP() {
    if (this.forceHTTP) return true;
    if (this.wsFailures < FALLBACK_AFTER) return false;
    if (!this.fallbackSince) this.fallbackSince = Date.now();
    if (Date.now() - this.fallbackSince > FALLBACK_PERIOD) { this.wsFailures = 0; this.fallbackSince = 0; return false; }
    return true;
  }

  /** One WebSocket session; resolves with whether the server welcomed it. */
  async runWS() {
    const report = await this.outboxReport().catch(() => ({}));
    return new Promise((resolve) => {
      const url = new URL(this.base || location.href);
      const ws = new WebSocket(`${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}/mobile/v1/sync`, SUBPROTOCOL);
      const s = new WSSession(this, ws);
      this.session = s;
      ws.onopen = () => s.send({ type: 'hello', id: s.newID('h'), protocol: PROTOCOL, device_id: this.deviceID, app_version: this.appVersion, schema_version: SCHEMA_VERSION, token: this.token, client_time: new Date().toISOString(), ...report });
      ws.onmessage = (ev) => s.receive(ev.data);
      ws.onerror = () => {};
      ws.onclose = async (ev) => {
        s.closed = true;
        clearTimeout(s.helloTimer);
        clearTimeout(s.pushTimer);
        if (this.session === s) this.session = null;
        for (const [, v] of s.verifies) v.reject(new FieldSyncError('offline', 'the connection closed before the digest came'));
        await this.closed(ev.code, s);
        if (!s.welcomed && !this.st.stopped && this.st.running) {
          // Count it against the WebSocket only when HTTP reaches the server: a phone
          // without network is not a network that blocks WebSockets.
          if (await this.reachable()) this.wsFailures++;
        } else if (s.welcomed) {
          this.wsFailures = 0;
        }
        resolve(s.welcomed);
      };
    });
  }

  async reachable() {
    try {
      const r = await fetch(this.base + '/healthz', { cache: 'no-store' });
      return r.ok;
    } catch { return false; }
  }

  /** What a close code means (docs/sync-protocol.md §8). */
  async closed(code, s) {
    switch (code) {
      case 4401: this.stopWith('unauthorized'); break;
      case 4403:
        this.stopWith('revoked');
        await this.wipe(true);
        break;
      case 4409: this.stopWith('replaced'); break;
      case 4426: this.stopWith('update_required'); break;
      case 1009: this.batchCap = Math.max(1, Math.floor((s.push ? s.push.rows.length : (this.batchCap || 500)) / 2)); break;
    }
  }

  /** One HTTP fallback session: push and pull by polling until FALLBACK_PERIOD ends. */
  async runHTTP() {
    const until = Date.now() + FALLBACK_PERIOD;
    let connected = false;
    while (this.st.running && !this.st.stopped && (this.forceHTTP || Date.now() < until)) {
      await this.roundHTTP();
      if (!connected) { connected = true; this.setState({ connected: true, transport: 'http' }); }
      await new Promise((resolve) => {
        const t = setTimeout(() => { this.wake = null; resolve(); }, POLL_EVERY);
        this.wake = () => { clearTimeout(t); resolve(); };
      });
    }
    return connected;
  }

  async roundHTTP() {
    for (let i = 0; i < 1000; i++) {
      const { batch } = await this.nextBatch(this.batchCap || 500, 4 << 20);
      if (!batch.length) break;
      let body;
      try {
        const res = await this.fetch('/mobile/v1/sync/push', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ mutations: batch.map(wire), client_time: new Date().toISOString() }) });
        body = await res.json();
      } catch (e) {
        if (e.status && e.status < 500 && e.status !== 401 && e.status !== 429) { await this.pushRefused(batch, e.code, e.message); continue; }
        throw e;
      }
      await this.applyResults(batch, body.results || []);
    }
    for (let i = 0; i < 10000; i++) {
      let page;
      try {
        const res = await this.fetch('/mobile/v1/sync/pull', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ checkpoint: this.meta.checkpoint || '', limit: 1000 }) });
        page = await res.json();
      } catch (e) {
        if (e.code === 'checkpoint_expired') { await this.wipe(false); continue; }
        throw e;
      }
      await this.applyChanges(page.changes, page.checkpoint);
      if (!page.has_more) break;
    }
    await this.caughtUp();
  }

  /** A push answered by an error: transient defers; else halve; a lone mutation is rejected. */
  async pushRefused(batch, code, message) {
    if (TRANSIENT.has(code)) return this.deferRows(batch, `${code}: ${message}`);
    if (batch.length > 1) { this.batchCap = Math.max(1, Math.floor(batch.length / 2)); return; }
    return this.rejectLocally(batch[0], code, message);
  }

  /**
   * Compares the server's digest of this device's scope with the local one. Resolves
   * {ok, local, server}; needs the WebSocket and a caught-up mirror.
   */
  async verify() {
    const s = this.session;
    if (!s || !s.welcomed) throw new FieldSyncError('offline', 'verify needs a live connection');
    return s.verify();
  }
}

/** The state of one WebSocket connection. */
class WSSession {
  constructor(c, ws) {
    this.c = c;
    this.ws = ws;
    this.n = 0;
    this.welcomed = false;
    this.closed = false;
    this.limits = { max_batch: 500, max_frame_bytes: 4 << 20 };
    this.pullID = '';
    this.push = null;
    this.pushing = false;
    this.again = false;
    this.verifies = new Map();
    this.q = Promise.resolve();
    this.helloTimer = setTimeout(() => this.close(4000), REQUEST_TIMEOUT);
    this.pushTimer = 0;
  }

  newID(p) { return p + ++this.n; }
  send(f) { if (!this.closed && this.ws.readyState === 1) this.ws.send(JSON.stringify(f)); }
  close(code) { try { this.ws.close(code === 1000 || (code >= 3000 && code < 5000) ? code : 1000); } catch { /* closed */ } }

  /** Frames are handled one at a time, in order. */
  receive(data) {
    let f;
    try { f = JSON.parse(data); } catch { return; }
    this.q = this.q.then(() => this.handle(f)).catch((e) => {
      this.c.setState({ lastError: e.message || String(e) });
      this.close(1000);
    });
  }

  pull(checkpoint) {
    this.pullID = this.newID('p');
    this.send({ type: 'pull', id: this.pullID, checkpoint: checkpoint ?? (this.c.meta.checkpoint || ''), limit: 1000, live: true });
  }

  async handle(f) {
    const c = this.c;
    switch (f.type) {
      case 'welcome':
        clearTimeout(this.helloTimer);
        this.welcomed = true;
        if (f.limits) this.limits = f.limits;
        c.setState({ connected: true, transport: 'websocket', lastError: '' });
        this.pull();
        this.kick();
        break;
      case 'changes':
        if (f.re !== this.pullID) return; // a superseded pull
        await c.applyChanges(f.changes, f.checkpoint);
        if (f.has_more) { this.pull(f.checkpoint); return; }
        await c.caughtUp();
        break;
      case 'results': {
        if (!this.push || f.re !== this.push.id) return;
        const rows = this.push.rows;
        this.push = null;
        clearTimeout(this.pushTimer);
        // What the push made on the server (events of actions, a sealed sheet) comes down
        // by a fresh pull.
        if (await c.applyResults(rows, f.results || [])) this.pull();
        this.kick();
        break;
      }
      case 'digest': {
        const v = this.verifies.get(f.re);
        if (!v) return;
        this.verifies.delete(f.re);
        v.resolve({ ok: f.count === v.local.count && f.hash === v.local.hash, local: v.local, server: { count: f.count, hash: f.hash, checkpoint: f.checkpoint } });
        break;
      }
      case 'error':
        if (f.re && f.re === this.pullID) {
          if (f.code === 'checkpoint_expired') { await c.wipe(false); this.pull(''); return; }
          throw new FieldSyncError(f.code, f.message);
        }
        if (this.push && f.re === this.push.id) {
          const rows = this.push.rows;
          this.push = null;
          clearTimeout(this.pushTimer);
          c.setState({ lastError: `${f.code}: ${f.message}` });
          await c.pushRefused(rows, f.code, f.message);
          this.kick();
          return;
        }
        if (this.verifies.has(f.re)) {
          this.verifies.get(f.re).reject(new FieldSyncError(f.code, f.message));
          this.verifies.delete(f.re);
          return;
        }
        c.setState({ lastError: `${f.code}: ${f.message}` });
        break;
    }
  }

  /** Sends the next batch unless one is in flight. */
  kick() {
    if (!this.welcomed || this.closed) return;
    if (this.pushing || this.push) { this.again = true; return; }
    this.pushing = true;
    this.again = false;
    (async () => {
      try {
        const cap = Math.min(this.limits.max_batch || 500, this.c.batchCap || 500);
        const { batch, wake } = await this.c.nextBatch(cap, this.limits.max_frame_bytes || 4 << 20);
        if (this.closed) return;
        if (batch.length) {
          this.push = { id: this.newID('m'), rows: batch };
          this.send({ type: 'push', id: this.push.id, mutations: batch.map(wire) });
          this.pushTimer = setTimeout(() => this.close(4000), REQUEST_TIMEOUT);
        } else if (wake) {
          setTimeout(() => this.kick(), Math.max(50, wake - Date.now()));
        }
      } catch (e) {
        this.c.setState({ lastError: e.message || String(e) });
      } finally {
        this.pushing = false;
        if (this.again && !this.push) this.kick();
      }
    })();
  }

  async verify() {
    const local = await this.c.digest();
    const id = this.newID('v');
    return new Promise((resolve, reject) => {
      this.verifies.set(id, { local, resolve, reject });
      this.send({ type: 'verify', id, checkpoint: local.checkpoint });
    });
  }
}
