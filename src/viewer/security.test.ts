import t from 'tap';
import { APP_CSP, basicAuthAccepts, crossSiteRefusal } from './security.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

t.test('basic auth', async (t) => {
  const expected = { username: 'viewer', password: 'pa:ss wörd' };
  t.ok(basicAuthAccepts(basic('viewer', 'pa:ss wörd'), expected), 'exact credentials (colon and UTF-8 in the password)');
  t.ok(basicAuthAccepts(`basic  ${Buffer.from('viewer:pa:ss wörd').toString('base64')}`, expected), 'scheme is case-insensitive');
  for (const [name, header] of [
    ['wrong password', basic('viewer', 'nope')],
    ['wrong user', basic('admin', 'pa:ss wörd')],
    ['password prefix', basic('viewer', 'pa:ss')],
    ['empty', ''],
    ['absent', undefined],
    ['no colon', `Basic ${Buffer.from('viewer').toString('base64')}`],
    ['bearer', 'Bearer abc'],
  ] as const) {
    t.notOk(basicAuthAccepts(header, expected), name);
  }
  t.notOk(basicAuthAccepts(basic('', ''), { username: '', password: 'x' }));
});

t.test('cross-site refusal for state changes', async (t) => {
  const ok = { method: 'DELETE', host: '127.0.0.1:8025', origin: undefined, secFetchSite: undefined };
  t.equal(crossSiteRefusal(ok), undefined, 'curl: no browser headers');
  t.equal(crossSiteRefusal({ ...ok, origin: 'http://127.0.0.1:8025', secFetchSite: 'same-origin' }), undefined, 'the page itself');
  t.equal(crossSiteRefusal({ ...ok, secFetchSite: 'none' }), undefined, 'typed by the user');
  t.match(crossSiteRefusal({ ...ok, method: 'POST' }), /use DELETE/);
  t.match(crossSiteRefusal({ ...ok, method: 'GET' }), /use DELETE/);
  t.match(crossSiteRefusal({ ...ok, secFetchSite: 'cross-site' }), /cross-site/);
  t.match(crossSiteRefusal({ ...ok, secFetchSite: 'same-site' }), /same-site/, 'another port on the same host is another origin');
  t.match(crossSiteRefusal({ ...ok, origin: 'http://evil.example' }), /cross-origin/);
  t.match(crossSiteRefusal({ ...ok, origin: 'null' }), /opaque origin/, 'the sandboxed mail frame');
  t.match(crossSiteRefusal({ ...ok, origin: '::' }), /malformed Origin/);
});

t.test('app CSP: no inline script, not frameable', async (t) => {
  t.match(APP_CSP, "default-src 'self'");
  t.match(APP_CSP, "frame-ancestors 'none'");
  t.notMatch(APP_CSP, /unsafe-inline|unsafe-eval|https?:/);
});
