// The client library's side of the gateway's authentication (docs/CLIENT.md
// "Authentication"; the gateway's side is docs/SECURITY.md): the `token`
// option resolved to the current token, the `Authorization: Bearer` header
// it becomes, and what a 401's `WWW-Authenticate` says. Pure functions apart
// from calling the page's token function; the token only ever travels in
// the header, never in a URL (URLs end up in proxy logs and histories).

/** True when `token` (the option) is given: the library then streams through fetch. */
export function hasTokenOption(token) {
  return token !== undefined && token !== null;
}

/**
 * The current token: the `token` option is a string, or a function
 * returning a string or a promise of one (called before every request, so a
 * page can refresh it). '' and null mean none (the request goes without).
 */
export async function resolveToken(token) {
  const value = typeof token === 'function' ? await token() : token;
  if (value === undefined || value === null || value === '') return '';
  if (typeof value !== 'string') throw new TypeError('the token must be a string');
  return value;
}

/** `headers` plus `Authorization: Bearer <token>` when there is a token. */
export function withBearer(headers, token) {
  return token ? {...headers, Authorization: `Bearer ${token}`} : {...headers};
}

/**
 * The parameters of a `WWW-Authenticate: Bearer realm="...", error="...",
 * error_description="..."` challenge (RFC 6750 section 3): {error,
 * description}, each '' when absent. Quoted strings may hold \-escapes.
 */
export function parseChallenge(header) {
  const out = {error: '', description: ''};
  if (typeof header !== 'string') return out;
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (let m = re.exec(header); m !== null; m = re.exec(header)) {
    const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
    if (m[1] === 'error') out.error = value;
    if (m[1] === 'error_description') out.description = value;
  }
  return out;
}

/** What a 401 means, for a message: whether a token was sent, and the gateway's reason. */
export function unauthorizedMessage(sentToken, challenge) {
  if (!sentToken) return 'The gateway requires an access token.';
  const why = challenge && challenge.description ? `: ${challenge.description}` : '';
  return `The gateway refused the access token${why}.`;
}

/** An answer that is not 200 to a request of the library other than a stream. */
export class HttpError extends Error {
  constructor(status, challenge, sentToken) {
    super(
        status === 401 ? unauthorizedMessage(sentToken, challenge) :
                         `The gateway answered HTTP ${status}.`);
    this.name = 'HttpError';
    this.status = status;
    /** 'unauthorized' for a 401 (as a stream's end says it), else 'http'. */
    this.reason = status === 401 ? 'unauthorized' : 'http';
    this.challenge = challenge;
    this.sentToken = sentToken;
  }
}
