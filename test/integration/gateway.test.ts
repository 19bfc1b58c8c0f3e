// The mail gateway on real parts (issue 8): the real GreenMail jar and `demomail gateway`, both
// started exactly as `demomail bootstrap --output` renders them (desiredObjects on an empty cluster;
// the gateway's env from manifests/config.yaml through envFrom, credentials from the rendered
// Secrets), on free loopback ports. Real clients verify TLS against the bundle the real
// `demomail install-ca` writes, for the name `localhost` (a SAN of the certificate).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import t from 'tap';
import { createServerCertificate } from '../../src/pki/certificates.js';
import { ensureBuilt, gatewayFor, greenmailFor, ROOT, unavailable, renderedMailserver } from '../helpers/greenmail.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

const { settings, plan, deployment, secrets, secretText, smtp, imap } = renderedMailserver();

const tag = randomBytes(3).toString('hex');

t.test('gateway on real parts', async (t) => {
  const missing = ['curl', 'openssl', 'php'].filter((tool) => spawnSync(tool, [tool === 'openssl' ? 'version' : '--version'], { stdio: 'ignore' }).status !== 0);
  if (missing.length > 0) return unavailable(t, `${missing.join(', ')} not installed`);
  const greenmail = await greenmailFor(t, deployment, secrets);
  if (!greenmail) return;
  const gateway = await gatewayFor(t, deployment, secrets, greenmail, { extraEnv: { DEMOMAIL_GATEWAY_IDLE_TIMEOUT: '10' } });
  t.comment('gateway launcher: + DEMOMAIL_GATEWAY_IDLE_TIMEOUT=10 (idle sessions end after 10 s instead of 60 s, for the idle-client case)');

  const dir = mkdtempSync(join(tmpdir(), 'demomail-gateway-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cli = ensureBuilt();
  const caDir = join(dir, 'etc-demomail');
  const install = spawnSync(process.execPath, [cli, 'install-ca', '--dir', caDir], { env: { ...process.env, DEMOMAIL_CA_PEM: plan.mailCaBundle }, encoding: 'utf8' });
  t.equal(install.status, 0, `install-ca: ${install.stderr}`);
  const bundlePath = join(caDir, 'ca-bundle.crt');
  const bundle = readFileSync(bundlePath, 'utf8');
  const tlsOptions = { ca: bundle, servername: 'localhost', rejectUnauthorized: true, minVersion: 'TLSv1.2' as const };

  const http = `http://127.0.0.1:${gateway.ports.http}`;
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${http}/metrics`)).text();
    const match = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  };
  const stored = () => metric('demomail_gateway_store_messages');

  const transport = (port: number, options: { secure?: boolean; requireTLS?: boolean; auth?: { user: string; pass: string } | false } = {}) => {
    const tr = nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      secure: options.secure ?? false,
      requireTLS: options.requireTLS ?? !options.secure,
      ...(options.auth === false ? {} : { auth: options.auth ?? smtp }),
      tls: tlsOptions,
    });
    t.teardown(() => tr.close());
    return tr;
  };
  const submission = transport(gateway.ports.submission);

  const imapClient = async (): Promise<ImapFlow> => {
    const client = new ImapFlow({ host: '127.0.0.1', port: greenmail.ports.imaps, secure: true, servername: 'localhost', auth: imap, tls: tlsOptions, logger: false });
    await client.connect();
    return client;
  };
  const mailbox = await imapClient();
  mailbox.on('error', () => {}); // GreenMail is stopped on purpose at the end
  t.teardown(async () => {
    if (mailbox.usable) await mailbox.logout();
  });
  /** Sources of the IMAP account's INBOX messages matching `match`, polled until `timeoutMs`. */
  const waitInImap = async (match: (source: string) => boolean, timeoutMs: number): Promise<{ source: string; ms: number } | undefined> => {
    const started = Date.now();
    while (Date.now() - started <= timeoutMs) {
      const lock = await mailbox.getMailboxLock('INBOX');
      try {
        const status = mailbox.mailbox;
        if (status && status.exists > 0) {
          for await (const message of mailbox.fetch('1:*', { source: true })) {
            const source = message.source?.toString('utf8') ?? '';
            if (match(source)) return { source, ms: Date.now() - started };
          }
        }
      } finally {
        lock.release();
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return undefined;
  };
  const greenmailMessages = async (address: string): Promise<{ subject: string; mimeMessage?: string }[]> => {
    const res = await fetch(`http://127.0.0.1:${greenmail.ports.api}/api/user/${encodeURIComponent(address)}/messages/INBOX`);
    return res.ok ? ((await res.json()) as { subject: string; mimeMessage?: string }[]) : [];
  };

  await t.test('nodemailer on 465 (implicit TLS) and on 587 (requireTLS), verified against the bundle', async (t) => {
    for (const [name, tr] of [
      ['465', transport(gateway.ports.smtps, { secure: true })],
      ['587', submission],
    ] as const) {
      const subject = `gateway ${name} ${tag}`;
      const info = await tr.sendMail({ from: smtp.user, to: imap.user, subject, text: `over ${name}` });
      t.match(info.response, /^250 2\.6\.0 /, `${name}: 250 with an enhanced status code`);
      const found = await waitInImap((s) => s.includes(`Subject: ${subject}`), 5000);
      t.ok(found, `${name}: read back over IMAPS`);
      t.match(found?.source ?? '', new RegExp(`^Delivered-To: ${imap.user}\\r?$`, 'm'), 'Delivered-To on the copy');
    }
  });

  await t.test('curl --ssl-reqd on 587 with --cacert', async (t) => {
    const subject = `gateway curl ${tag}`;
    const file = join(dir, 'curl.eml');
    writeFileSync(file, `From: ${smtp.user}\r\nTo: ${imap.user}\r\nSubject: ${subject}\r\n\r\nsent by curl\r\n`);
    const port = gateway.ports.submission;
    const run = spawnSync(
      'curl',
      ['--silent', '--show-error', '--max-time', '20', '--ssl-reqd', '--cacert', bundlePath, '--resolve', `localhost:${port}:127.0.0.1`, '--mail-from', smtp.user, '--mail-rcpt', imap.user, '-T', file, '-K', '-', `smtp://localhost:${port}`],
      { input: `user = "${smtp.user}:${smtp.pass}"\n`, encoding: 'utf8' },
    );
    t.equal(run.status, 0, run.stderr);
    t.ok(await waitInImap((s) => s.includes(`Subject: ${subject}`), 5000), 'in IMAP');
  });

  await t.test('openssl s_client -starttls smtp: certificate verified, AUTH offered only after STARTTLS', async (t) => {
    const run = spawnSync(
      'openssl',
      ['s_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${gateway.ports.submission}`, '-servername', 'localhost', '-verify_hostname', 'localhost', '-verify_return_error', '-CAfile', bundlePath, '-crlf', '-ign_eof'],
      { input: 'EHLO openssl.test\nQUIT\n', encoding: 'utf8', timeout: 20_000 },
    );
    t.equal(run.status, 0, run.stderr.split('\n').slice(-5).join('\n'));
    t.match(run.stdout, /Verify return code: 0 \(ok\)/);
    t.match(run.stdout, /250-AUTH PLAIN LOGIN/, 'AUTH advertised inside TLS');
    t.match(run.stdout, /Protocol\s*:\s*TLSv1\.[23]/);
  });

  await t.test('PHP replays Net_SMTP on 587 (EHLO, STARTTLS, AUTH LOGIN, MAIL/RCPT/DATA) with only the injected php.ini', async (t) => {
    const { SSL_CERT_FILE: _ignored, ...baseEnv } = process.env;
    const subject = `civicrm-like starttls ${tag}`;
    const run = spawnSync('php', [join(ROOT, 'test/fixtures/php/civicrm-like-client.php'), 'starttls', 'localhost', String(gateway.ports.submission), imap.user, subject], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...baseEnv, PHP_INI_SCAN_DIR: `:${join(caDir, 'php')}`, MAIL_USER: smtp.user, MAIL_PASS: smtp.pass },
    });
    t.equal(run.status, 0, run.stderr);
    t.ok(await waitInImap((s) => s.includes(`Subject: ${subject}`), 5000), 'in IMAP');
  });

  const civiMail = async (returnPath: string, to: string, subject: string, extra: Record<string, string> = {}) =>
    submission.sendMail({ envelope: { from: returnPath, to: [to] }, from: smtp.user, to, subject, text: 'CiviMail-like mailing', headers: extra });

  await t.test('CiviMail return path imap+b.… → hard-1@SIMULATE_DOMAIN → DSN 5.1.1 in the IMAP account within 5 s', async (t) => {
    const returnPath = 'imap+b.7.42.0123456789abcdef@demomail.test';
    await civiMail(returnPath, 'hard-1@bounce.demomail.test', `hard ${tag}`);
    const dsn = await waitInImap((s) => /multipart\/report/i.test(s) && s.includes(`To: ${returnPath}`) && s.includes(`hard ${tag}`), 5000);
    t.ok(dsn, 'a multipart/report addressed to the return path');
    t.match(dsn?.source ?? '', /^Status: 5\.1\.1\r?$/m);
    t.match(dsn?.source ?? '', /^X-Original-To: imap\+b\.7\.42\.0123456789abcdef@demomail\.test\r?$/m, 'plus-addressed copy says where it was sent');
    t.comment(`DSN in IMAP after ${dsn?.ms} ms`);
  });

  await t.test('the same without "+" (VERP_LOCALPART empty) → BOUNCE_MAILBOX (the IMAP account)', async (t) => {
    const returnPath = 'b.7.43.0123456789abcdef@demomail.test';
    await civiMail(returnPath, 'hard-2@bounce.demomail.test', `hard-noplus ${tag}`);
    const dsn = await waitInImap((s) => /multipart\/report/i.test(s) && s.includes(`To: ${returnPath}`) && s.includes(`hard-noplus ${tag}`), 5000);
    t.ok(dsn, 'delivered to the bounce mailbox');
    t.match(dsn?.source ?? '', /^Status: 5\.1\.1\r?$/m);
  });

  await t.test('soft-… → DSN 4.2.2', async (t) => {
    const returnPath = 'imap+b.7.44.0123456789abcdef@demomail.test';
    await civiMail(returnPath, 'soft-1@bounce.demomail.test', `soft ${tag}`);
    const dsn = await waitInImap((s) => /multipart\/report/i.test(s) && s.includes(`To: ${returnPath}`) && s.includes(`soft ${tag}`), 5000);
    t.ok(dsn);
    t.match(dsn?.source ?? '', /^Status: 4\.2\.2\r?$/m);
  });

  await t.test('ooo-… → auto-reply with Auto-Submitted: auto-replied to Reply-To', async (t) => {
    await submission.sendMail({ envelope: { from: smtp.user, to: ['ooo-1@bounce.demomail.test'] }, from: smtp.user, replyTo: imap.user, to: 'ooo-1@bounce.demomail.test', subject: `ooo ${tag}`, text: 'are you there?' });
    const reply = await waitInImap((s) => /^Auto-Submitted: auto-replied\r?$/im.test(s) && s.includes(`ooo ${tag}`), 5000);
    t.ok(reply, 'an auto-reply in the Reply-To mailbox');
    t.equal(await metric('demomail_gateway_simulated_total{kind="auto-reply",result="success"}'), 1);
  });

  await t.test('one message to three recipients: one capture, three mailboxes', async (t) => {
    const before = await stored();
    const recipients = [1, 2, 3].map((n) => `three-${n}-${tag}@demomail.test`);
    const info = await submission.sendMail({ from: smtp.user, to: recipients, subject: `three ${tag}`, text: 'x' });
    t.same([...info.accepted].sort(), [...recipients].sort());
    t.equal(await stored(), before + 1, 'one capture');
    for (const r of recipients) {
      const messages = await greenmailMessages(r);
      t.same(messages.map((m) => m.subject), [`three ${tag}`], `${r} has its copy`);
      t.match(messages[0]?.mimeMessage ?? '', new RegExp(`^Delivered-To: ${r}\\r?$`, 'm'));
    }
  });

  await t.test('a wrong password → 535 5.7.8', async (t) => {
    const bad = transport(gateway.ports.submission, { auth: { user: smtp.user, pass: `${smtp.pass}x` } });
    const err = (await bad.sendMail({ from: smtp.user, to: imap.user, subject: 'nope', text: 'x' }).then(() => undefined, (e: unknown) => e)) as { code?: string; response?: string } | undefined;
    t.equal(err?.code, 'EAUTH');
    t.match(err?.response ?? '', /^535 5\.7\.8/);
    t.ok((await metric('demomail_gateway_auth_failures_total')) >= 1);
  });

  await t.test('AUTH before STARTTLS on 587 → refused; MAIL without AUTH on 587 → refused', async (t) => {
    const s = await SmtpDialogue.open(gateway.ports.submission);
    t.teardown(() => s.close());
    t.equal((await s.reply()).code, 220);
    const ehlo = await s.command('EHLO plain.test');
    t.match(ehlo.text, /STARTTLS/);
    // smtp-server advertises AUTH before STARTTLS too, and refuses it there (538): same outcome for a client.
    const auth = await s.command(`AUTH PLAIN ${Buffer.from(`\0${smtp.user}\0${smtp.pass}`).toString('base64')}`);
    t.equal(auth.code, 538, auth.text);
    const mail = await s.command(`MAIL FROM:<${smtp.user}>`);
    t.equal(mail.code, 530, mail.text);
  });

  await t.test('26 MiB → 552 5.3.4, nothing stored', async (t) => {
    const before = await stored();
    // Built beforehand: encoding 26 MiB inside sendMail can pause the stream longer than the idle timeout.
    const raw = Buffer.concat([Buffer.from(`From: ${smtp.user}\r\nTo: ${imap.user}\r\nSubject: too big\r\n\r\n`), Buffer.alloc(26 * 1024 * 1024, 'x\r\n')]);
    const err = (await submission.sendMail({ envelope: { from: smtp.user, to: [imap.user] }, raw }).then(() => undefined, (e: unknown) => e)) as { responseCode?: number; response?: string } | undefined;
    t.equal(err?.responseCode, 552, err?.response ?? "no error");
    t.match(err?.response ?? '', /5\.3\.4/);
    t.equal(await stored(), before, 'nothing stored');
    t.same((await greenmailMessages(imap.user)).filter((m) => m.subject === 'too big'), [], 'nothing delivered');
  });

  await t.test('the certificate is hot-reloaded on a kubelet-like ..data swap, no restart', async (t) => {
    const serial = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: gateway.ports.smtps, ...tlsOptions }, () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.destroy();
        });
        socket.once('error', reject);
      });
    const first = await serial();
    const ca = { certPem: secretText(settings.names.caSecret, 'tls.crt'), keyPem: secretText(settings.names.caSecret, 'tls.key') };
    const renewed = createServerCertificate({ ca, commonName: 'smtpdemo.demomail.svc.cluster.local', sans: ['localhost', '127.0.0.1'] });
    const tlsDir = join(gateway.mountRoot, 'gateway-tls');
    // The kubelet writes a new timestamped directory and renames ..data; files are replaced by rename here.
    for (const [name, content] of [['tls.key', renewed.keyPem], ['tls.crt', renewed.certPem]] as const) {
      writeFileSync(join(tlsDir, `.${name}.new`), content, { mode: 0o400 });
      renameSync(join(tlsDir, `.${name}.new`), join(tlsDir, name));
    }
    const started = Date.now();
    let now = first;
    while (now === first && Date.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      now = await serial();
    }
    t.not(now, first, `new certificate served after ${Date.now() - started} ms`);
    t.equal(await metric('demomail_gateway_tls_reloads_total{result="success"}'), 2);
  });

  await t.test('the client goes away in the middle of DATA: nothing stored, nothing delivered (the streamed copy is dropped)', async (t) => {
    const before = await stored();
    const rcpt = `gone-${tag}@demomail.test`;
    const s = await SmtpDialogue.open(gateway.ports.smtp);
    t.equal((await s.reply()).code, 220);
    await s.command('EHLO gone.test');
    t.equal((await s.command(`MAIL FROM:<${smtp.user}>`)).code, 250);
    t.equal((await s.command(`RCPT TO:<${rcpt}>`)).code, 250);
    t.equal((await s.command('DATA')).code, 354);
    s.write(`From: ${smtp.user}\r\nTo: ${rcpt}\r\nSubject: gone ${tag}\r\n\r\n${'half a message\r\n'.repeat(2000)}`);
    // Long enough for the copy's MAIL, RCPT, DATA and these bytes to reach GreenMail.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    s.close();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    t.equal(await stored(), before, 'nothing stored');
    t.same(await greenmailMessages(rcpt), [], 'nothing delivered');
    const info = await submission.sendMail({ from: smtp.user, to: rcpt, subject: `after gone ${tag}`, text: 'x' });
    t.match(info.response, /^250 /, 'the next message is accepted');
    t.same((await greenmailMessages(rcpt)).map((m) => m.subject), [`after gone ${tag}`]);
  });

  await t.test('hostile sessions: clean SMTP errors, bounded memory, the process stays up and ready', async (t) => {
    const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${gateway.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    const rssBefore = rss();

    const noise = await SmtpDialogue.open(gateway.ports.smtp);
    await noise.reply();
    for (let i = 0; i < 64; i++) noise.write(randomBytes(1024));
    t.ok(await noise.waitClosed(10_000), 'random bytes: the server ends the session');
    t.match(noise.pending(), /^(5\d\d|421)[ -]/m, 'with SMTP error replies');

    const many = await SmtpDialogue.open(gateway.ports.smtp);
    await many.reply();
    await many.command('EHLO many.test');
    t.equal((await many.command(`MAIL FROM:<${smtp.user}>`)).code, 250);
    many.write(Array.from({ length: 10_000 }, (_, i) => `RCPT TO:<r${i}@demomail.test>\r\n`).join(''));
    const codes = new Map<number, number>();
    let sample452 = '';
    for (let i = 0; i < 10_000; i++) {
      const reply = await many.reply(30_000);
      codes.set(reply.code, (codes.get(reply.code) ?? 0) + 1);
      if (reply.code === 452) sample452 = reply.text;
    }
    t.same(Object.fromEntries(codes), { 250: settings.gateway.maxRecipients, 452: 10_000 - settings.gateway.maxRecipients }, '10,000 RCPT: 1,000 accepted, the rest 452');
    t.match(sample452, /^452 4\.5\.3 /);
    t.equal((await many.command('RSET')).code, 250);
    many.close();

    const endless = await SmtpDialogue.open(gateway.ports.smtp);
    await endless.reply();
    for (let i = 0; i < 256; i++) endless.write('A'.repeat(4096));
    t.ok(await endless.waitClosed(10_000), 'a 1 MiB line without CRLF: the session ends');
    t.match(endless.pending(), /^(5\d\d|421)[ -]/m, 'with an SMTP error reply');

    const idle = await SmtpDialogue.open(gateway.ports.smtp);
    await idle.reply();
    const idleStarted = Date.now();
    t.ok(await idle.waitClosed(25_000), `an idle client is disconnected (after ${Date.now() - idleStarted} ms)`);
    t.match(idle.pending(), /^421 /m, 'with 421');

    const rssAfter = rss();
    t.ok(rssAfter - rssBefore < 64, `RSS grew ${(rssAfter - rssBefore).toFixed(1)} MiB (${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB)`);
    t.equal(gateway.child.exitCode, null, 'still running');
    t.equal((await fetch(`${http}/readyz`)).status, 200, 'still ready');
    const info = await submission.sendMail({ from: smtp.user, to: imap.user, subject: `after hostile ${tag}`, text: 'x' });
    t.match(info.response, /^250 /, 'still accepting mail');
  });

  // Last: it stops and restarts GreenMail (its mailboxes are gone afterwards).
  await t.test('GreenMail stopped → 451 4.3.0, nothing stored; accepted again once it is back', async (t) => {
    const before = await stored();
    await greenmail.stop();
    const err = (await submission.sendMail({ from: smtp.user, to: imap.user, subject: 'while down', text: 'x' }).then(() => undefined, (e: unknown) => e)) as { responseCode?: number; response?: string } | undefined;
    t.equal(err?.responseCode, 451, err?.response ?? "no error");
    t.match(err?.response ?? '', /^451 4\.3\.0/);
    t.equal(await stored(), before, 'nothing stored');
    t.equal((await fetch(`${http}/readyz`)).status, 503, 'not ready while GreenMail is down');

    const back = await greenmailFor(t, deployment, secrets, { ports: greenmail.ports });
    if (!back) return;
    const info = await submission.sendMail({ from: smtp.user, to: imap.user, subject: `after restart ${tag}`, text: 'x' });
    t.match(info.response, /^250 /);
    t.equal(await stored(), before + 1);
    t.same((await greenmailMessages(imap.user)).map((m) => m.subject), [`after restart ${tag}`]);
    t.equal((await fetch(`${http}/readyz`)).status, 200);
  });
});
