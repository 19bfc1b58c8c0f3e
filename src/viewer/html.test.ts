import t from 'tap';
import { BLOCKED_IMAGE, displayHtml, frameCsp, frameDocument } from './html.js';

const cidUrl = (cid: string) => `/api/v1/messages/m1/cid/${encodeURIComponent(cid)}`;
const blocked = (html: string) => displayHtml(html, { cidUrl, allowRemote: false });
const allowed = (html: string) => displayHtml(html, { cidUrl, allowRemote: true });

t.test('cid: references point at the store, in src, srcset, background and CSS', async (t) => {
  const { html, remoteImagesBlocked } = blocked(
    '<img src="cid:logo@x"><img srcset="cid:a@x 1x, cid:b@x 2x"><td background=\'cid:bg@x\'><div style="background:url(cid:c@x)">',
  );
  t.equal(remoteImagesBlocked, 0);
  t.match(html, '<img src="/api/v1/messages/m1/cid/logo%40x">');
  t.match(html, 'srcset="/api/v1/messages/m1/cid/a%40x 1x, /api/v1/messages/m1/cid/b%40x 2x"');
  t.match(html, 'background="/api/v1/messages/m1/cid/bg%40x"');
  t.match(html, 'style="background:url(&quot;/api/v1/messages/m1/cid/c%40x&quot;)"');
});

t.test('remote images are replaced and counted until allowed', async (t) => {
  const source =
    '<img src="https://tracker.example/p.gif"><img src=//cdn.example/x.png><img srcset="https://a.example/1.png 1x">' +
    '<table background="http://b.example/bg.jpg"><div style="background-image: url(\'https://c.example/c.png\')">' +
    '<style>.x { background: url(https://d.example/d.png) } .y { background: url(data:image/png;base64,AA==) }</style><img src="data:image/png;base64,AA==">';
  const b = blocked(source);
  t.equal(b.remoteImagesBlocked, 6);
  t.notMatch(b.html, /tracker\.example\/p\.gif"(?! )/);
  t.match(b.html, `data-demomail-blocked="https://tracker.example/p.gif" src="${BLOCKED_IMAGE}"`);
  for (const host of ['cdn.example', 'a.example', 'b.example/bg', 'c.example', 'd.example']) {
    t.notMatch(b.html.replace(/data-demomail-blocked="[^"]*"/g, ''), host, `${host} gone`);
  }
  t.match(b.html, 'url(data:image/png;base64,AA==)', 'data: URLs stay');
  const a = allowed(source);
  t.equal(a.remoteImagesBlocked, 0);
  t.match(a.html, 'src="https://tracker.example/p.gif"');
  t.match(a.html, 'url(https://d.example/d.png)');
});

t.test('scripts, handlers and self-fetching elements are dropped; links open outside the frame', async (t) => {
  const { html } = blocked(
    '<p onclick="x()">a</p><script>alert(1)</script><SCRIPT src=x></SCRIPT><img src="cid:a" onerror=alert(1)>' +
      '<link rel=stylesheet href=https://e.example/s.css><link rel=dns-prefetch href=//f.example><meta http-equiv="refresh" content="0;url=https://g.example">' +
      '<base href="https://h.example/"><iframe src="https://i.example"></iframe><object data=x></object><a href="https://j.example" target="_self" ping="https://k.example/">j</a><script>unterminated',
  );
  t.notMatch(html, /script|onclick|onerror|alert|e\.example|f\.example|g\.example|h\.example|i\.example|k\.example|<object/i);
  t.match(html, '<p>a</p>');
  t.match(html, '<a href="https://j.example" target="_blank" rel="noopener noreferrer">j</a>');
});

t.test('attribute values are re-escaped, entities decoded once', async (t) => {
  const { html } = blocked('<a title="a &amp; &quot;b&quot;" href=\'x"y\'>z</a>');
  t.match(html, 'title="a &amp; &quot;b&quot;"');
  t.match(html, 'href="x&quot;y"');
});

t.test('the frame document and its CSP', async (t) => {
  t.match(frameDocument({ html: '<p>x</p>', remoteImagesBlocked: 0 }), /^<!doctype html><meta charset="utf-8"><base target="_blank">.*<p>x<\/p>$/);
  const strict = frameCsp(false);
  t.match(strict, "default-src 'none'");
  t.match(strict, "img-src 'self' data:;");
  t.notMatch(strict, /script-src|https:/);
  t.match(strict, 'sandbox allow-popups allow-popups-to-escape-sandbox');
  t.match(frameCsp(true), "img-src 'self' data: http: https:;");
});
