// The viewer's request guards, pure: optional basic auth and the cross-site check for state changes.
import { createHash, timingSafeEqual } from 'node:crypto';

/** CSP of the page itself: only our own files, no inline script, framed by nobody. */
export const APP_CSP = [
  "default-src 'self'",
  "frame-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export interface Credentials {
  username: string;
  password: string;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * True when `authorization` carries exactly these credentials. Both sides are hashed first so the
 * comparison is constant-time whatever the lengths, and user and password are both always compared.
 */
export function basicAuthAccepts(authorization: string | undefined, expected: Credentials): boolean {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
  const decoded = match ? Buffer.from(match[1] ?? '', 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? '' : decoded.slice(0, colon);
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  const userOk = timingSafeEqual(digest(user), digest(expected.username));
  const passwordOk = timingSafeEqual(digest(password), digest(expected.password));
  return match !== null && colon >= 0 && userOk && passwordOk;
}

export interface RequestFacts {
  method: string;
  host: string | undefined;
  origin: string | undefined;
  secFetchSite: string | undefined;
}

/**
 * Why a state-changing request (delete, purge) is refused, or undefined when it may proceed.
 *
 * The API changes state only with DELETE, which a cross-site form or image can never send and which a
 * cross-site `fetch` can send only after a CORS preflight we never answer. On top of that, a browser
 * that says where the request comes from (`Sec-Fetch-Site`, `Origin`) must say "this origin".
 * curl and scripts send neither header and pass.
 */
export function crossSiteRefusal(request: RequestFacts): string | undefined {
  if (request.method !== 'DELETE') return `${request.method} cannot change anything here: use DELETE`;
  const site = request.secFetchSite?.toLowerCase();
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-site request refused (Sec-Fetch-Site: ${site})`;
  if (request.origin !== undefined && request.origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(request.origin).host;
    } catch {
      return `malformed Origin header: ${request.origin}`;
    }
    if (originHost !== request.host) return `cross-origin request refused (Origin ${request.origin}, Host ${request.host ?? 'absent'})`;
  } else if (request.origin === 'null') {
    return 'request from an opaque origin (a sandboxed frame or a file) refused';
  }
  return undefined;
}
