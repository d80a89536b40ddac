// api.js: the console's only door to the server. The bearer token lives in sessionStorage,
// so it is gone when the tab closes; every error becomes an ApiError carrying the API's
// {"error": {code, message, field}}.

const TOKEN = 'fieldsync.token';
const USER = 'fieldsync.user';
const MUST_CHANGE = 'fieldsync.must_change_password';

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || '';
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN) || ''; },
  get user() {
    try { return JSON.parse(sessionStorage.getItem(USER) || 'null'); } catch { return null; }
  },
  // mustChangePassword: the login said the password was chosen by the machine and must be
  // changed before anything else.
  get mustChangePassword() { return sessionStorage.getItem(MUST_CHANGE) === '1'; },
  set(token, user, mustChangePassword = false) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, JSON.stringify(user));
    if (mustChangePassword) sessionStorage.setItem(MUST_CHANGE, '1'); else sessionStorage.removeItem(MUST_CHANGE);
  },
  clear() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
    sessionStorage.removeItem(MUST_CHANGE);
  },
};

// onUnauthenticated is called when a request with a token is refused as unauthenticated
// (expired or revoked), so the app can send the user back to the login page.
export let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

async function request(method, path, body, { raw = false, timeoutMs = 30000, ifMatch, file } = {}) {
  // Both languages, as every label of the console: the server answers errors 中文 English.
  const headers = { Accept: raw ? '*/*' : 'application/json', 'Accept-Language': 'zh, en' };
  const token = session.token;
  if (token) headers.Authorization = 'Bearer ' + token;
  if (ifMatch) headers['If-Match'] = String(ifMatch);
  const init = { method, headers, signal: AbortSignal.timeout(timeoutMs) };
  if (file) {
    headers['Content-Type'] = 'application/octet-stream';
    init.body = file;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path.startsWith('/') ? path : '/api/v1/' + path, init);
  } catch (e) {
    throw new ApiError(0, 'network', '无法连接服务器 Cannot reach the server (' + e.message + ')');
  }
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    const err = body?.error;
    const e = new ApiError(res.status, err?.code || 'http_' + res.status, err?.message || res.statusText || 'HTTP ' + res.status, err?.field);
    e.body = body; // e.g. an import's report with the rows it refused
    if (res.status === 401 && token) onUnauthenticated(e);
    throw e;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

export const api = {
  get: (p) => request('GET', p),
  post: (p, body) => request('POST', p, body === undefined ? {} : body),
  put: (p, body) => request('PUT', p, body),
  // patch edits the version the user saw (If-Match), so an edit made meanwhile is a conflict.
  patch: (p, body, version) => request('PATCH', p, body, { ifMatch: version }),
  // upload sends a file as the request body.
  upload: (p, file) => request('POST', p, undefined, { file, timeoutMs: 120000 }),
  blob: async (p) => (await request('GET', p, undefined, { raw: true, timeoutMs: 60000 })).blob(),
};

// openDocument fetches a document that needs the token (a PDF) and shows it in a new tab.
// The tab is opened at once, inside the click, so pop-up blockers let it through.
export async function openDocument(path) {
  const w = window.open('', '_blank');
  try {
    const b = await api.blob(path);
    const url = URL.createObjectURL(b);
    if (w) w.location.href = url; else window.location.href = url;
    setTimeout(() => URL.revokeObjectURL(url), 120000);
  } catch (e) {
    if (w) w.close();
    throw e;
  }
}

// download fetches a file that needs the token and saves it under name.
export async function download(path, name) {
  const b = await api.blob(path);
  const url = URL.createObjectURL(b);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
