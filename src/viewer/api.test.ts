// The viewer's HTTP surface through fastify's inject (and a real socket for the event stream).
import { readdirSync, statSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import Fastify from 'fastify';
import t, { type Test } from 'tap';
import { captureRaw, composeMessage, startViewerServer } from '../../scripts/lib/viewer-fixture.js';
import { CaptureStore } from '../gateway/store.js';
import { defaultWebRoot, viewerPlugin, type ViewerOptions } from './plugin.js';
import { APP_CSP } from './security.js';

const PDF = Buffer.from('%PDF-1.4\n' + 'binary\u0000\u00ff'.repeat(100), 'latin1');
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

async function viewer(t: Test, options: Partial<ViewerOptions> = {}) {
  const store = new CaptureStore({ maxMessages: 100, maxBytes: 10 * 1024 * 1024 });
  const app = Fastify();
  let purges = 0;
  await app.register(viewerPlugin, { store, purgeMailboxes: async () => void purges++, ...options });
  t.teardown(() => app.close());
  const html = await captureRaw(
    store,
    await composeMessage({
      from: 'Shop <shop@demomail.test>',
      to: 'donor@example.org',
      subject: 'Receipt',
      text: 'Thanks',
      html: '<p>Thanks <img src="cid:logo@x"><img src="https://tracker.example/p.gif"></p>',
      attachments: [
        { filename: 'logo.png', content: PNG, cid: 'logo@x' },
        { filename: 'reçu 2026.pdf', content: PDF, contentType: 'application/pdf' },
      ],
    }),
    { mailFrom: 'shop@demomail.test', rcptTo: ['donor@example.org'] },
  );
  const plain = await captureRaw(
    store,
    await composeMessage({ from: 'news@demomail.test', to: ['a@x.test', 'b@x.test', 'c@x.test'], subject: 'Newsletter', text: 'Spring' }),
    { mailFrom: 'imap+b.1.2.0123456789abcdef@demomail.test', rcptTo: ['a@x.test', 'b@x.test', 'c@x.test'] },
  );
  return { app, store, html, plain, purges: () => purges };
}

t.test('list: newest first, paging, search, mailbox', async (t) => {
  const { app, html, plain } = await viewer(t);
  const all = (await app.inject('/api/v1/messages')).json();
  t.equal(all.total, 2);
  t.same(all.messages.map((m: { id: string }) => m.id), [plain.id, html.id]);
  t.same(all.messages[0].mailboxes, ['a@x.test', 'b@x.test', 'c@x.test'], 'one row, three mailboxes');
  const page = (await app.inject('/api/v1/messages?start=1&limit=1')).json();
  t.same([page.total, page.start, page.count, page.messages[0].id], [2, 1, 1, html.id]);
  t.equal((await app.inject('/api/v1/messages?query=subject:receipt')).json().messages[0].id, html.id);
  t.equal((await app.inject('/api/v1/messages?query=spring')).json().total, 1, 'free text searches the body');
  t.equal((await app.inject('/api/v1/messages?mailbox=b@x.test')).json().messages[0].id, plain.id);
  t.equal((await app.inject('/api/v1/messages?limit=-1')).statusCode, 400);
  t.same((await app.inject('/api/v1/mailboxes')).json().mailboxes, ['a@x.test', 'b@x.test', 'c@x.test', 'donor@example.org']);
});

t.test('one message parsed, raw, html frame, parts by index and content-id', async (t) => {
  const { app, html } = await viewer(t);
  const base = `/api/v1/messages/${html.id}`;
  const view = (await app.inject(base)).json();
  t.equal(view.subject, 'Receipt');
  t.same(view.addresses.from, [{ name: 'Shop', address: 'shop@demomail.test' }]);
  t.equal(view.text, 'Thanks');
  t.match(view.html, 'cid:logo@x');
  t.equal(view.remoteImages, 1);
  t.ok(view.headers.some((h: { name: string; value: string }) => h.name === 'Subject' && h.value === 'Receipt'));
  t.same(view.envelope, { mailFrom: 'shop@demomail.test', rcptTo: ['donor@example.org'] });
  t.same(
    view.attachments.map((a: Record<string, unknown>) => [a['index'], a['filename'], a['contentType'], a['size'], a['contentId'] ?? null, a['inline']]),
    [
      [0, 'logo.png', 'image/png', PNG.length, 'logo@x', true],
      [1, 'reçu 2026.pdf', 'application/pdf', PDF.length, null, false],
    ],
  );

  const raw = await app.inject(`${base}/raw`);
  t.ok(raw.rawPayload.equals(html.raw), 'raw bytes as captured');
  t.equal(raw.headers['content-type'], 'message/rfc822');
  t.match(raw.headers['content-disposition'], /^attachment; filename="[0-9a-f]+\.eml"/);

  const frame = await app.inject(`${base}/html`);
  t.match(frame.headers['content-security-policy'], /^default-src 'none'; img-src 'self' data:; /);
  t.match(frame.body, `/api/v1/messages/${html.id}/cid/logo%40x`);
  t.notMatch(frame.body, 'src="https://tracker.example');
  const remote = await app.inject(`${base}/html?remote=1`);
  t.match(remote.headers['content-security-policy'], "img-src 'self' data: http: https:");
  t.match(remote.body, 'src="https://tracker.example/p.gif"');

  const pdf = await app.inject(`${base}/parts/1`);
  t.ok(pdf.rawPayload.equals(PDF), 'attachment byte-identical');
  t.equal(pdf.headers['content-disposition'], `attachment; filename="re_u 2026.pdf"; filename*=UTF-8''re%C3%A7u%202026.pdf`);
  t.match(pdf.headers['content-security-policy'], 'sandbox', 'opened in a tab, a part runs nothing');
  t.equal(pdf.headers['x-content-type-options'], 'nosniff');
  const logo = await app.inject(`${base}/cid/logo%40x`);
  t.ok(logo.rawPayload.equals(PNG));
  t.match(logo.headers['content-disposition'], /^inline/);
  for (const path of [`${base}/parts/2`, `${base}/cid/nope`, '/api/v1/messages/nope', '/api/v1/messages/nope/raw']) {
    t.equal((await app.inject(path)).statusCode, 404, path);
  }
  const plainHtml = await app.inject(`/api/v1/messages/${(await app.inject('/api/v1/messages')).json().messages[0].id}/html`);
  t.equal(plainHtml.statusCode, 404, 'a text-only message has no HTML');
});

t.test('delete and purge: DELETE only, same origin only; purge empties GreenMail first', async (t) => {
  const { app, store, html, plain, purges } = await viewer(t);
  t.equal((await app.inject({ method: 'POST', url: `/api/v1/messages/${html.id}` })).statusCode, 404, 'no POST route');
  const crossSite = await app.inject({ method: 'DELETE', url: `/api/v1/messages/${html.id}`, headers: { 'sec-fetch-site': 'cross-site' } });
  t.equal(crossSite.statusCode, 403);
  const foreign = await app.inject({ method: 'DELETE', url: '/api/v1/messages', headers: { origin: 'http://evil.example', host: 'localhost:8025' } });
  t.equal(foreign.statusCode, 403);
  t.equal(store.stats().messages, 2);
  t.equal(purges(), 0);
  const ok = await app.inject({ method: 'DELETE', url: `/api/v1/messages/${html.id}`, headers: { origin: 'http://localhost:8025', host: 'localhost:8025', 'sec-fetch-site': 'same-origin' } });
  t.same(ok.json(), { deleted: html.id });
  t.equal((await app.inject({ method: 'DELETE', url: `/api/v1/messages/${html.id}` })).statusCode, 404);
  t.same((await app.inject({ method: 'DELETE', url: '/api/v1/messages' })).json(), { purged: 1 });
  t.equal(purges(), 1);
  t.notOk(store.get(plain.id));
});

t.test('purge: a GreenMail failure deletes nothing and says so', async (t) => {
  const { app, store } = await viewer(t, { purgeMailboxes: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:8080')) });
  const res = await app.inject({ method: 'DELETE', url: '/api/v1/messages' });
  t.equal(res.statusCode, 502);
  t.match(res.json().message, /GreenMail purge failed, nothing deleted: connect ECONNREFUSED/);
  t.equal(store.stats().messages, 2);
});

t.test('wait: stored match, arriving match, timeout, since, bad input', async (t) => {
  const { app, store, html } = await viewer(t);
  const now = await app.inject('/api/v1/wait?to=donor@example.org&subject=receipt&timeout=0');
  t.equal(now.statusCode, 200);
  t.equal(now.json().id, html.id);
  t.equal(now.json().text, 'Thanks', 'the parsed view: a CI script reads the body');
  const since = new Date(Date.now() + 1).toISOString();
  const pending = app.inject(`/api/v1/wait?to=late@x.test&since=${since}&timeout=5`);
  const older = app.inject(`/api/v1/wait?to=donor@example.org&since=${encodeURIComponent(since)}&timeout=0.3`);
  await new Promise((r) => setTimeout(r, 50));
  await captureRaw(store, await composeMessage({ from: 'x@demomail.test', to: 'other@x.test', subject: 'noise', text: '' }), { mailFrom: 'x@demomail.test', rcptTo: ['other@x.test'] });
  const late = await captureRaw(store, await composeMessage({ from: 'x@demomail.test', to: 'late@x.test', subject: 'Late', text: '' }), { mailFrom: 'x@demomail.test', rcptTo: ['late@x.test'] });
  t.equal((await pending).json().id, late.id, 'the arriving message, not the noise');
  const timedOut = await older;
  t.equal(timedOut.statusCode, 408, 'a stored match older than since does not count');
  t.match(timedOut.json().message, /no message matched .* within 0.3 s/);
  t.equal((await app.inject('/api/v1/wait?timeout=301')).statusCode, 400);
  t.equal((await app.inject('/api/v1/wait?since=yesterday')).statusCode, 400);
  t.equal((await app.inject('/api/v1/wait?subject=a"b')).statusCode, 400);
  t.equal(store.events.listenerCount('event'), 1, 'waits leave no listener behind (only the parse cache)');
});

t.test('basic auth covers page and API', async (t) => {
  const { app } = await viewer(t, { basicAuth: { username: 'u', password: 'p' } });
  const denied = await app.inject('/api/v1/messages');
  t.equal(denied.statusCode, 401);
  t.match(denied.headers['www-authenticate'], /^Basic realm="demomail"/);
  t.equal((await app.inject('/')).statusCode, 401);
  const ok = await app.inject({ url: '/api/v1/messages', headers: { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` } });
  t.equal(ok.statusCode, 200);
});

t.test('the page: built files with the app CSP', async (t) => {
  const { app } = await viewer(t);
  const index = await app.inject('/');
  t.equal(index.statusCode, 200, 'dist/src/viewer/web built (npm run build)');
  t.equal(index.headers['content-security-policy'], APP_CSP);
  t.match(index.body, '<script type="module" src="app.js"></script>');
  t.notMatch(index.body, /<script>|\sstyle="|\son\w+="/, 'no inline script, style or handler');
  const js = await app.inject('/app.js');
  t.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
  const shipped = readdirSync(defaultWebRoot()).filter((f) => f.endsWith('.js')).reduce((sum, f) => sum + statSync(join(defaultWebRoot(), f)).size, 0);
  t.ok(shipped <= 150 * 1024, `JavaScript shipped: ${shipped} bytes (budget 150 KB)`);
  const missing = Fastify();
  await missing.register(viewerPlugin, { store: new CaptureStore({ maxMessages: 1, maxBytes: 1e6 }), purgeMailboxes: async () => {}, webRoot: '/nonexistent' });
  t.equal((await missing.inject('/')).statusCode, 503);
  await missing.close();
});

t.test('events: SSE frames for added, deleted, purged', async (t) => {
  const server = await startViewerServer();
  t.teardown(() => server.close());
  const frames: string[] = [];
  const response = await new Promise<import('node:http').IncomingMessage>((done) => get(`${server.url}/api/v1/events`, done));
  t.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8');
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => frames.push(chunk));
  const m = await captureRaw(server.store, await composeMessage({ from: 'a@x.test', to: 'b@x.test', subject: 'Live', text: 'x' }), { mailFrom: 'a@x.test', rcptTo: ['b@x.test'] });
  server.store.delete(m.id);
  server.store.purge();
  await new Promise((r) => setTimeout(r, 100));
  const text = frames.join('');
  t.match(text, /^retry: 1000\n\nevent: hello\n/);
  t.match(text, new RegExp(`event: added\ndata: \\{"id":"${m.id}".*"subject":"Live"`));
  t.match(text, `event: deleted\ndata: {"id":"${m.id}"}\n\n`);
  t.match(text, 'event: purged\ndata: {}\n\n');
  response.destroy();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(server.store.events.listenerCount('event'), 1, 'a closed stream unsubscribes');
});

t.test('badges: routing rules and generated messages', async (t) => {
  const { app, store, html } = await viewer(t);
  const dsn = await captureRaw(
    store,
    await composeMessage({ from: 'MAILER-DAEMON@x.test', to: 'imap+b.1.2.0123456789abcdef@demomail.test', subject: 'Undelivered', text: '5.1.1' }),
    { mailFrom: '', rcptTo: ['imap+b.1.2.0123456789abcdef@demomail.test'] },
    {
      origin: 'generated',
      generatedFrom: { kind: 'dsn-hard', messageId: html.id, recipient: 'hard-1@bounce.demomail.test' },
      deliveries: [
        { recipient: 'imap+b.1.2.0123456789abcdef@demomail.test', mailbox: 'imap@demomail.test', rule: 'plus-address' },
        { recipient: 'b.1.2.0123456789abcdef@demomail.test', mailbox: 'imap@demomail.test', rule: 'civimail-return-path' },
      ],
    },
  );
  const row = (await app.inject('/api/v1/messages?limit=1')).json().messages[0];
  t.equal(row.id, dsn.id);
  t.same(row.mailboxes, ['imap@demomail.test'], 'two deliveries into one mailbox: listed once');
  t.same(
    row.badges.map((b: { kind: string; label: string }) => [b.kind, b.label]),
    [
      ['plus-address', 'plus-address'],
      ['civimail-return-path', 'return path → bounce mailbox'],
      ['dsn-hard', 'hard bounce (simulated)'],
    ],
  );
  t.same((await app.inject(`/api/v1/messages/${dsn.id}`)).json().generatedFrom, { kind: 'dsn-hard', messageId: html.id, recipient: 'hard-1@bounce.demomail.test' });
});

t.test('closing the server ends pending waits (503) instead of holding the shutdown', async (t) => {
  const { app } = await viewer(t);
  await app.ready();
  const pending = app.inject('/api/v1/wait?to=never@x.test&timeout=300');
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  await app.close();
  const res = await pending;
  t.equal(res.statusCode, 503);
  t.ok(Date.now() - started < 5000, 'closed promptly');
});

t.test('attachment count: the list and the message view agree on what is an inline image', async (t) => {
  const { app, store } = await viewer(t);
  // Outlook-style: the logo in multipart/related with a Content-ID but no Content-Disposition.
  const raw = [
    'From: shop@demomail.test',
    'To: donor@example.org',
    'Subject: related logo',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="mixed"',
    '',
    '--mixed',
    'Content-Type: multipart/related; boundary="rel"',
    '',
    '--rel',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<p><img src="cid:logo@x"> Thanks</p>',
    '--rel',
    'Content-Type: image/png; name="logo.png"',
    'Content-Transfer-Encoding: base64',
    'Content-ID: <logo@x>',
    '',
    PNG.toString('base64'),
    '--rel--',
    '--mixed',
    'Content-Type: application/pdf; name="receipt.pdf"',
    'Content-Disposition: attachment; filename="receipt.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    PDF.toString('base64'),
    '--mixed--',
    '',
  ].join('\r\n');
  const stored = await captureRaw(store, Buffer.from(raw), { mailFrom: 'shop@demomail.test', rcptTo: ['donor@example.org'] });
  const listed = (await app.inject('/api/v1/messages?query=subject:related')).json().messages[0];
  t.equal(listed.attachmentCount, 1, 'the list counts the PDF only');
  const view = (await app.inject(`/api/v1/messages/${stored.id}`)).json();
  t.same(
    view.attachments.map((a: { filename: string; inline: boolean }) => [a.filename, a.inline]),
    [
      ['logo.png', true],
      ['receipt.pdf', false],
    ],
    'the view marks the related logo inline: its Attachments tab reads "Attachments (1 + 1 inline)"',
  );
});

t.test('summaries the store parses late: the list, the view, the event stream and a wait never show a partial one', async (t) => {
  const server = await startViewerServer();
  t.teardown(() => server.close());
  // As the gateway stores a client's message: no summary given. HTML only: the fast path leaves
  // it to mailparser, so the store has only its headers until mailparser is done.
  const deferred = async (subject: string, html: string) => {
    const raw = await composeMessage({ from: 'Shop <shop@demomail.test>', to: 'donor@example.org', subject, html });
    return server.store.add({ raw, envelope: { mailFrom: 'shop@demomail.test', rcptTo: ['donor@example.org'] }, clientAddress: '127.0.0.1', origin: 'submission', deliveries: [{ recipient: 'donor@example.org', mailbox: 'donor@example.org', rule: 'direct' }] });
  };
  const frames: string[] = [];
  const stream = await new Promise<import('node:http').IncomingMessage>((done) => get(`${server.url}/api/v1/events`, done));
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => frames.push(chunk));
  const wait = fetch(`${server.url}/api/v1/wait?query=xylophone&timeout=5`); // a word of the body only
  await new Promise((r) => setTimeout(r, 50));

  const first = await deferred('Receipt', '<p>Thank you for the <b>xylophone</b> donation</p>');
  const list = (await (await fetch(`${server.url}/api/v1/messages`)).json()) as { messages: { id: string; hasHtml: boolean; snippet: string }[] };
  t.same([list.messages[0]?.id, list.messages[0]?.hasHtml], [first.id, true], 'the list: the whole summary at once');
  t.match(list.messages[0]?.snippet, /xylophone donation/);
  const view = (await (await fetch(`${server.url}/api/v1/messages/${first.id}`)).json()) as { snippet: string };
  t.match(view.snippet, /xylophone/, 'the view too');
  const waited = await wait;
  t.equal(waited.status, 200, 'a wait on a word of the body finds it once mailparser has read it');
  t.equal(((await waited.json()) as { id: string }).id, first.id);

  const second = await deferred('Second', '<p>Another <i>one</i></p>');
  await new Promise((r) => setTimeout(r, 200));
  stream.destroy();
  const added = frames.join('').split('\n\n').filter((f) => f.startsWith('event: added'));
  t.equal(added.length, 2);
  t.match(added[0], new RegExp(`"id":"${first.id}".*"snippet":"Thank you for the xylophone donation".*"hasHtml":true`), 'the stream sends the whole summary');
  t.match(added[1], new RegExp(`"id":"${second.id}".*"snippet":"Another one"`), 'in order');
  t.notMatch(frames.join(''), /summarized/, 'nothing of the store\'s own bookkeeping');
});
