// The viewer in a real browser (Debian chromium driven by playwright-core): what a person sees and
// what a hostile mail cannot do. Screenshots land in .tap/screenshots/ (1280×800 and 390×844).
import { createServer, type Server } from 'node:http';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import t from 'tap';
import type { Page } from 'playwright-core';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { composeMessage } from '../../scripts/lib/viewer-fixture.js';
import { settingsFrom } from '../../src/config.js';
import type { KubeObject } from '../../src/bootstrap/objects.js';
import { desiredObjects, randomAlphanumericPassword } from '../../src/bootstrap/plan.js';
import { CHROMIUM_MISSING, chromiumPath, launchChromium } from '../../scripts/lib/chromium.js';
import { gatewayFor, greenmailFor, ROOT, unavailable } from '../helpers/greenmail.js';

// The few browser globals the page.evaluate callbacks touch (this file compiles with Node's lib, not DOM;
// strings would be eval, which the viewer's CSP rightly refuses).
declare const document: { querySelectorAll(selector: string): { length: number }; title: string };
declare const window: { hacked?: number };
declare const location: { hash: string };

const SHOTS = join(ROOT, '.tap', 'screenshots');
/** A real PNG (a blue disc on white), so naturalWidth says whether an <img> loaded. */
function discPng(size: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const rows: Buffer[] = [];
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 3, 255);
    row[0] = 0;
    for (let x = 0; x < size; x++) {
      if ((x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 2.3) ** 2) row.set([36, 87, 197], 1 + x * 3);
    }
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}
const PNG = discPng(64);
const PDF = Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n' + 'x'.repeat(3000));

/** Counts every request by path; serves a PNG, and an attacker page that tries to delete through the viewer. */
async function hitServer(viewerUrl: () => string, targetId: () => string): Promise<{ server: Server; port: number; hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/attack.html') {
      const target = `${viewerUrl()}/api/v1/messages/${targetId()}`;
      res.setHeader('Content-Type', 'text/html');
      res.end(`<!doctype html><body>
        <img src="${target}?method=DELETE"><img src="${viewerUrl()}/api/v1/messages?method=DELETE">
        <iframe name="sink"></iframe>
        <form id="one" method="POST" action="${target}" target="sink"><input name="_method" value="DELETE"></form>
        <form id="all" method="POST" action="${viewerUrl()}/api/v1/messages" enctype="text/plain" target="sink"><input name="x" value="y"></form>
        <script>
          document.getElementById('one').submit();
          setTimeout(() => document.getElementById('all').submit(), 200);
          fetch(${JSON.stringify(target)}, { method: 'DELETE', mode: 'no-cors' }).catch(() => {});
          fetch(${JSON.stringify(`${viewerUrl()}/api/v1/messages`)}, { method: 'DELETE' }).catch(() => {});
          setTimeout(() => { document.title = 'done'; }, 1000);
        </script></body>`);
      return;
    }
    res.setHeader('Content-Type', 'image/png');
    res.end(PNG);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0, hits };
}

async function rowCount(page: Page): Promise<number> {
  return page.locator('#rows .row').count();
}

async function waitRows(page: Page, n: number): Promise<void> {
  await page.waitForFunction((n) => document.querySelectorAll('#rows .row').length === n, n, { timeout: 5000 });
}

// The mail server as `demomail bootstrap` renders it: GreenMail and `demomail gateway` (its own process).
const settings = settingsFrom({});
const plan = desiredObjects(settings, { objects: {}, labelledNamespaces: [] }, { now: new Date(), randomPassword: () => randomAlphanumericPassword() });
const deployment = plan.objects.find((o) => o.kind === 'Deployment') as KubeObject;
const secrets = plan.objects.filter((o) => o.kind === 'Secret');
const RETURN_PATH = 'imap+b.7.42.0123456789abcdef@demomail.test';

t.test('viewer in Chromium, on GreenMail and the gateway', async (t) => {
  const executable = chromiumPath();
  if (!executable) return unavailable(t, CHROMIUM_MISSING);
  mkdirSync(SHOTS, { recursive: true });
  const greenmail = await greenmailFor(t, deployment, secrets);
  if (!greenmail) return;
  const gateway = await gatewayFor(t, deployment, secrets, greenmail);
  const viewerUrl = `http://127.0.0.1:${gateway.ports.http}`;

  let attackTarget = '';
  const remote = await hitServer(() => viewerUrl, () => attackTarget);
  t.teardown(() => new Promise<void>((done) => remote.server.close(() => done())));
  const pixel = `http://127.0.0.1:${remote.port}/pixel.png`;

  // Port 25's listener (AUTH optional), STARTTLS verified against the mail CA for the name localhost.
  const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: gateway.ports.smtp, requireTLS: true, tls: { ca: plan.mailCaBundle, servername: 'localhost' } });
  t.teardown(() => smtp.close());
  const send = async (mail: Mail.Options): Promise<string> => {
    await smtp.sendMail(mail);
    const found = await fetch(`${viewerUrl}/api/v1/wait?subject=${encodeURIComponent(String(mail.subject))}&timeout=5`);
    t.equal(found.status, 200, `captured: ${String(mail.subject)}`);
    return ((await found.json()) as { id: string }).id;
  };
  const stored = async (id: string) => (await fetch(`${viewerUrl}/api/v1/messages/${id}`)).status === 200;
  const total = async () => ((await (await fetch(`${viewerUrl}/api/v1/messages`)).json()) as { total: number }).total;
  const greenmailCount = async (address: string) =>
    ((await (await fetch(`http://127.0.0.1:${greenmail.ports.api}/api/user/${encodeURIComponent(address)}/messages/INBOX`)).json()) as unknown[]).length;

  // --- the mails ---------------------------------------------------------------------------------
  const hostileRaw = await composeMessage({
    from: 'Shop <shop@demomail.test>',
    to: 'donor@example.org',
    subject: 'Your donation receipt',
    text: 'Thank you for your donation of 50 EUR.',
    html: `<h1 style="font-family:sans-serif">Thank you!</h1>
      <p>Your donation of <b>50 EUR</b> was received.</p>
      <p><img id="logo" src="cid:logo@demomail" width="64" height="64" alt="logo"></p>
      <p><img id="remote" src="${pixel}" width="32" height="32" alt="tracking pixel"></p>
      <img src="x-broken" onerror="window.parent.hacked = 1; alert('onerror'); fetch('http://127.0.0.1:${remote.port}/onerror')">
      <script>window.parent.hacked = 2; alert('script'); fetch('http://127.0.0.1:${remote.port}/script');</script>
      <p><a href="https://example.org/">example.org</a></p>`,
    attachments: [
      { filename: 'logo.png', content: PNG, cid: 'logo@demomail' },
      { filename: 'receipt-2026.pdf', content: PDF, contentType: 'application/pdf' },
    ],
  });
  // Sent as raw bytes, so the .eml download can be compared with exactly what went over SMTP.
  const hostileId = await send({ envelope: { from: 'shop@demomail.test', to: ['donor@example.org'] }, raw: hostileRaw, subject: 'Your donation receipt' });
  await send({ from: 'cron@demomail.test', to: 'admin@demomail.test', subject: 'Scheduled job report', text: 'All 12 scheduled jobs ran.\nNothing to do.' });
  const three = ['alice@example.org', 'bob@example.org', 'carol@example.org'];
  await send({ from: 'News <news@demomail.test>', to: three, subject: 'Newsletter: spring campaign', html: '<p>Spring is here.</p>', text: 'Spring is here.' });
  // Plus-addressing: delivered to the IMAP account's mailbox, with its badge.
  const plusId = await send({ from: 'Helpdesk <help@example.org>', to: 'imap+ticket-42@demomail.test', subject: 'Re: ticket #42', text: 'We looked into it.' });
  // A CiviMail-like mailing to a simulated hard bounce: the gateway answers with a DSN to the return
  // path, which plus-addressing delivers to the IMAP account (the bounce mailbox CiviCRM polls).
  await send({ envelope: { from: RETURN_PATH, to: ['hard-1@bounce.demomail.test'] }, from: 'News <news@demomail.test>', to: 'hard-1@bounce.demomail.test', subject: 'Mailing to a bouncing address', text: 'Hello' });
  const dsn = await fetch(`${viewerUrl}/api/v1/wait?query=${encodeURIComponent(`to:${RETURN_PATH}`)}&timeout=10`);
  t.equal(dsn.status, 200, 'the DSN was generated and captured');
  const bounceId = ((await dsn.json()) as { id: string }).id;
  const listed = 6;

  const browser = await launchChromium(executable);
  t.teardown(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  const dialogs: string[] = [];
  let acceptConfirm = false;
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void (acceptConfirm && dialog.type() === 'confirm' ? dialog.accept() : dialog.dismiss());
  });
  await page.goto(viewerUrl);
  await waitRows(page, listed);

  t.test('list: newest first, one row per message (three recipients → one row), badges', async (t) => {
    const subjects = await page.locator('#rows .subject').allInnerTexts();
    t.same(
      subjects.map((s) => s.replace(/\s*\d+ attachments?$/, '')).slice(1),
      ['Mailing to a bouncing address', 'Re: ticket #42', 'Newsletter: spring campaign', 'Scheduled job report', 'Your donation receipt'],
    );
    t.equal(await page.locator('#rows .row', { hasText: 'Newsletter: spring campaign' }).count(), 1);
    t.match(await page.locator(`#rows .row[data-id="${plusId}"] .badge-plus-address`).innerText(), 'plus-address');
    t.match(await page.locator(`#rows .row[data-id="${plusId}"] .to`).innerText(), 'to imap@demomail.test', 'the mailbox it was delivered to');
    t.equal(await page.locator(`#rows .row[data-id="${bounceId}"] .badge-dsn-hard`).count(), 1, 'the bounce carries its badge');
    t.match(await page.locator(`#rows .row[data-id="${bounceId}"] .badge-civimail-return-path`).innerText(), 'return path → bounce mailbox', 'and its routing');
    t.match(await page.locator(`#rows .row[data-id="${bounceId}"] .to`).innerText(), `to ${settings.gateway.bounceMailbox}`);
    await page.screenshot({ path: join(SHOTS, 'list-1280.png') });
  });

  t.test('search and mailbox filter narrow the list', async (t) => {
    await page.fill('#search', 'subject:newsletter');
    await waitRows(page, 1);
    await page.fill('#search', 'from:cron');
    await page.locator('#rows .row', { hasText: 'Scheduled job report' }).waitFor();
    await waitRows(page, 1);
    await page.fill('#search', 'donation');
    await waitRows(page, 1);
    await page.fill('#search', '');
    await waitRows(page, listed);
    const options = await page.locator('#mailbox option').allInnerTexts();
    t.ok(options.includes('carol@example.org') && options.includes(settings.gateway.bounceMailbox), 'mailboxes offered');
    await page.selectOption('#mailbox', 'carol@example.org');
    await page.locator('#rows .row', { hasText: 'Newsletter: spring campaign' }).waitFor();
    await waitRows(page, 1);
    await page.selectOption('#mailbox', '');
    await waitRows(page, listed);
  });

  t.test('HTML mail: inline image shown, no script ran, remote image only once allowed', async (t) => {
    await page.locator(`#rows .row[data-id="${hostileId}"]`).focus();
    await page.keyboard.press('Enter'); // keyboard-usable: focus a row, Enter opens it
    const frameLocator = page.frameLocator('iframe.mail-frame');
    await frameLocator.locator('#logo').waitFor();
    const frame = page.frames().find((f) => f.url().includes(`/api/v1/messages/${hostileId}/html`));
    t.ok(frame, 'the HTML is in its own frame');
    // Evaluated through the DevTools protocol: the frame's own scripts are disabled by the sandbox.
    const logoWidth = await frameLocator.locator('#logo').evaluate((img) => { const i = img as unknown as { complete: boolean; naturalWidth: number }; return i.complete ? i.naturalWidth : -1; });
    t.equal(logoWidth, 64, `cid: image loaded from the store (naturalWidth ${logoWidth})`);
    t.equal(await page.locator('iframe.mail-frame').getAttribute('sandbox'), 'allow-popups allow-popups-to-escape-sandbox');
    t.match(await page.locator('.remote-notice').innerText(), /2 remote images blocked/);
    await new Promise((r) => setTimeout(r, 500));
    t.equal(remote.hits.get('/pixel.png') ?? 0, 0, 'remote image not fetched while blocked');
    t.same(dialogs, [], 'no dialog opened');
    t.equal(await page.evaluate(() => window.hacked), undefined, 'no global written');
    t.equal((remote.hits.get('/script') ?? 0) + (remote.hits.get('/onerror') ?? 0), 0, 'no request from script or handler');
    await page.screenshot({ path: join(SHOTS, 'message-1280.png') });

    await page.click('#show-remote');
    await frameLocator.locator('#remote').waitFor();
    for (let i = 0; i < 50 && (remote.hits.get('/pixel.png') ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    t.ok((remote.hits.get('/pixel.png') ?? 0) >= 1, 'remote image fetched once allowed');
    t.same(dialogs, [], 'still no dialog');
    t.equal((remote.hits.get('/script') ?? 0) + (remote.hits.get('/onerror') ?? 0), 0, 'still no script request');
  });

  t.test('tabs, .eml and attachment downloads are byte-identical', async (t) => {
    await page.click('#tab-text');
    t.match(await page.locator('#panel pre.text').innerText(), /donation of 50 EUR/);
    await page.click('#tab-headers');
    t.match(await page.locator('#panel table.headers').innerText(), /Subject\s+Your donation receipt/);
    await page.click('#tab-raw');
    t.match(await page.locator('#panel pre.raw').innerText(), /Content-Type: application\/pdf/);
    await page.click('#tab-attachments');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#panel a:has-text("receipt-2026.pdf")')]);
    t.equal(download.suggestedFilename(), 'receipt-2026.pdf');
    t.ok(readFileSync((await download.path()) as string).equals(PDF), 'PDF byte-identical');
    const [eml] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    t.ok(readFileSync((await eml.path()) as string).equals(hostileRaw), '.eml byte-identical to the captured bytes');
  });

  t.test('a mail sent while the page is open appears without reload', async (t) => {
    const sent = Date.now();
    await smtp.sendMail({ from: 'shop@demomail.test', to: 'late@example.org', subject: 'Arrives live', text: 'live' });
    await page.locator('#rows .row', { hasText: 'Arrives live' }).waitFor({ timeout: 2000 });
    t.comment(`appeared after ${Date.now() - sent} ms`);
    t.equal(await rowCount(page), listed + 1);
  });

  t.test('a cross-site page cannot delete or purge (form POST, image GET, fetch DELETE)', async (t) => {
    attackTarget = hostileId;
    const mailboxCopies = await greenmailCount('donor@example.org');
    const attacker = await context.newPage();
    // localhost vs 127.0.0.1: another site as far as the browser is concerned.
    await attacker.goto(`http://localhost:${remote.port}/attack.html`);
    await attacker.waitForFunction(() => document.title === 'done', undefined, { timeout: 5000 });
    await attacker.close();
    t.ok(await stored(hostileId), 'message still stored');
    t.equal(await total(), listed + 1);
    t.equal(await greenmailCount('donor@example.org'), mailboxCopies, 'GreenMail not purged');
    t.ok(mailboxCopies >= 1);
  });

  t.test('phone width: the list, then the message with a back button', async (t) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => (location.hash = ''));
    await page.locator('#message-pane').waitFor({ state: 'hidden' });
    await page.screenshot({ path: join(SHOTS, 'list-390.png') });
    await page.click(`#rows .row[data-id="${hostileId}"]`);
    await page.locator('#back').waitFor();
    await page.click('#tab-html');
    t.notOk(await page.locator('#list-pane').isVisible(), 'list hidden while a message is shown');
    await page.frameLocator('iframe.mail-frame').locator('#logo').waitFor();
    await page.screenshot({ path: join(SHOTS, 'message-390.png') });
    const tabsRight = await page.locator('#tab-attachments').evaluate((el) => el.getBoundingClientRect().right);
    t.ok(tabsRight <= 390, `every tab within the phone's width (Attachments tab ends at ${Math.round(tabsRight)} px)`);
    await page.click('#back');
    // The list comes back on the hashchange, which Chromium 156 delivers as a task after the click
    // returns (earlier versions before it): wait for it, briefly.
    await page.locator('#list-pane').waitFor({ state: 'visible', timeout: 3000 }).catch(() => {});
    t.ok(await page.locator('#list-pane').isVisible(), 'back shows the list');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  t.test('delete one, then purge all (with a confirm)', async (t) => {
    await page.click(`#rows .row[data-id="${hostileId}"]`);
    await page.locator('#delete').waitFor();
    await page.click('#delete');
    await waitRows(page, listed);
    t.notOk(await stored(hostileId), 'deleted from the store');
    t.ok((await greenmailCount('carol@example.org')) >= 1, 'GreenMail holds mail before the purge');
    acceptConfirm = true;
    await page.click('#purge');
    await waitRows(page, 0);
    t.equal(await total(), 0);
    t.equal(await greenmailCount('carol@example.org'), 0, 'GreenMail purged too');
    t.equal(await greenmailCount(settings.gateway.bounceMailbox), 0, 'the bounce mailbox too');
    t.match(dialogs, [/^confirm: Delete every captured message/]);
  });
});
