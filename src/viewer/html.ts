// Message HTML → the document the viewer's sandboxed iframe shows. Pure, no I/O.
//
// This is NOT the security boundary: the iframe's `sandbox` (no scripts, opaque origin) and the CSP
// header of the route serving this document (`frameCsp`) are. The rewrite makes the page honest
// about what it blocked: remote images become a placeholder and are counted ("3 remote images
// blocked — show"), `cid:` references point at the store, links open outside the frame, and
// elements that could fetch or navigate on their own (script, link, meta refresh, base) are dropped
// so that nothing leaves the page even where a browser's CSP support has gaps (dns-prefetch).

export interface DisplayHtml {
  html: string;
  /** Remote (http, https, protocol-relative, relative) image references replaced by the placeholder. */
  remoteImagesBlocked: number;
}

export interface DisplayOptions {
  /** Turns `cid:abc` into a URL served from the store. */
  cidUrl: (contentId: string) => string;
  /** The person allowed remote images for this message: leave them in place. */
  allowRemote: boolean;
}

/** A 1×1 transparent GIF: keeps the layout of a blocked image without fetching anything. */
export const BLOCKED_IMAGE = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7';

/** CSP of the iframe document: images from the store (and the network only when allowed), no script, no fetches. */
export function frameCsp(allowRemote: boolean): string {
  return [
    "default-src 'none'",
    `img-src 'self' data:${allowRemote ? ' http: https:' : ''}`,
    "style-src 'unsafe-inline'",
    "font-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'self'",
    // Also sandboxed when opened directly in a tab, outside the viewer's iframe.
    'sandbox allow-popups allow-popups-to-escape-sandbox',
  ].join('; ');
}

type UrlKind = 'cid' | 'data' | 'remote';

function urlKind(url: string): UrlKind {
  const u = url.trim().toLowerCase();
  if (u.startsWith('cid:')) return 'cid';
  if (u.startsWith('data:')) return 'data';
  return 'remote';
}

function decodeEntities(value: string): string {
  return value.replace(/&(amp|quot|#39|apos|lt|gt);/g, (_, e: string) => ({ amp: '&', quot: '"', '#39': "'", apos: "'", lt: '<', gt: '>' })[e] ?? '');
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
}

/** Rewrites `url(...)` in CSS text (a style attribute or a <style> block). */
function rewriteCss(css: string, options: DisplayOptions, counter: { blocked: number }): string {
  return css.replace(/url\(\s*(['"]?)([^'")]*)\1\s*\)/gi, (whole, _q: string, url: string) => {
    const kind = urlKind(url);
    if (kind === 'cid') return `url("${options.cidUrl(url.trim().slice(4))}")`;
    if (kind === 'data' || options.allowRemote) return whole;
    counter.blocked++;
    return 'url("")';
  });
}

// One attribute: name, then an optional value double-quoted, single-quoted or bare.
const ATTRIBUTE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;

function rewriteTag(tag: string, name: string, attributes: string, options: DisplayOptions, counter: { blocked: number }): string {
  const out: string[] = [];
  let isImageSource = false;
  for (const match of attributes.matchAll(ATTRIBUTE)) {
    const attribute = (match[1] ?? '').toLowerCase();
    if (attribute.startsWith('on')) continue; // event handlers: inert in the sandbox anyway, gone here
    if (attribute === 'ping') continue; // a click would POST to the sender (CSP blocks it too)
    const raw = match[2] ?? match[3] ?? match[4];
    if (raw === undefined) {
      out.push(attribute);
      continue;
    }
    let value = decodeEntities(raw);
    if (attribute === 'src' || attribute === 'background' || attribute === 'poster') {
      const kind = urlKind(value);
      if (kind === 'cid') value = options.cidUrl(value.trim().slice(4));
      else if (kind === 'remote' && !options.allowRemote) {
        counter.blocked++;
        isImageSource = true;
        out.push(`data-demomail-blocked="${escapeAttribute(value)}"`);
        value = BLOCKED_IMAGE;
      }
    } else if (attribute === 'srcset') {
      const candidates = value.split(',').map((c) => c.trim()).filter(Boolean);
      if (!options.allowRemote && candidates.some((c) => urlKind(c) === 'remote')) {
        counter.blocked++;
        continue;
      }
      value = candidates
        .map((c) => {
          const [url = '', ...descriptor] = c.split(/\s+/);
          return urlKind(url) === 'cid' ? [options.cidUrl(url.slice(4)), ...descriptor].join(' ') : c;
        })
        .join(', ');
    } else if (attribute === 'style') {
      value = rewriteCss(value, options, counter);
    } else if (attribute === 'target' && name === 'a') {
      continue; // replaced below
    }
    out.push(`${attribute}="${escapeAttribute(value)}"`);
  }
  if (name === 'a') out.push('target="_blank"', 'rel="noopener noreferrer"');
  if (isImageSource && name === 'img') out.push('title="remote image blocked"');
  const selfClosing = /\/\s*>$/.test(tag) ? ' /' : '';
  return `<${name}${out.length ? ' ' + out.join(' ') : ''}${selfClosing}>`;
}

/** The message HTML rewritten for the viewer's iframe, and how many remote images were blocked. */
export function displayHtml(source: string, options: DisplayOptions): DisplayHtml {
  const counter = { blocked: 0 };
  const html = source
    // Elements that run, fetch or navigate by themselves: removed with their content where they have one.
    .replace(/<script\b[\s\S]*?(?:<\/script\s*>|$)/gi, '')
    .replace(/<(?:link|base|meta\s[^>]*http-equiv\s*=\s*["']?refresh)\b[^>]*>/gi, '')
    .replace(/<(iframe|frame|object|embed|applet)\b[\s\S]*?(?:<\/\1\s*>|$)/gi, '')
    .replace(/(<style\b[^>]*>)([\s\S]*?)(<\/style\s*>)/gi, (_, open: string, css: string, close: string) => open + rewriteCss(css, options, counter) + close)
    .replace(/<([a-zA-Z][a-zA-Z0-9-]*)(\s[^>]*)?>/g, (tag, name: string, attributes: string | undefined) =>
      attributes === undefined ? tag : rewriteTag(tag, name.toLowerCase(), attributes, options, counter),
    );
  return { html, remoteImagesBlocked: counter.blocked };
}

/** The full iframe document: the rewritten HTML after a `<base target>` that opens links in a new tab. */
export function frameDocument(display: DisplayHtml): string {
  return `<!doctype html><meta charset="utf-8"><base target="_blank"><meta name="referrer" content="no-referrer">${display.html}`;
}
