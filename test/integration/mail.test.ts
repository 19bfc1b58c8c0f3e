// Mail end to end with the real GreenMail standalone jar and `demomail gateway`, both started with
// exactly the options of the Deployment the bootstrap renders (desiredObjects on an empty cluster), and
// the trust files written by the real `demomail install-ca`. Real clients verify TLS against that
// bundle for the name `localhost` (one of the certificate's SANs) while connecting to 127.0.0.1.
// GreenMail has no SMTPS any more: SMTPS (465) is the gateway's; IMAP/IMAPS are GreenMail's.
// The gateway's own scenarios (STARTTLS, routing, limits) are in gateway.test.ts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import t from 'tap';
import { mailAddress } from '../../src/config.js';
import { ENV, shellWords } from '../../src/bootstrap/greenmail.js';
import { createCertificateAuthority } from '../../src/pki/certificates.js';
import { ensureBuilt, gatewayFor, greenmailFor, ROOT, unavailable, renderedMailserver } from '../helpers/greenmail.js';

const { settings, plan, deployment, secrets, secretText, smtp, imap } = renderedMailserver();
const allSecretValues = [smtp.pass, imap.pass, secretText(settings.names.imap2Secret, 'password'), secretText(settings.names.mailserverTlsSecret, 'keystore-password')];

t.test('mail end to end through the rendered GreenMail Deployment', async (t) => {
  t.equal(smtp.user, mailAddress(settings, 'smtp'));
  t.equal(imap.user, mailAddress(settings, 'imap'));
  const missing = ['curl', 'openssl'].filter((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0 && spawnSync(tool, ['version'], { stdio: 'ignore' }).status !== 0);
  if (missing.length > 0) return unavailable(t, `${missing.join(' and ')} not installed`);

  const greenmail = await greenmailFor(t, deployment, secrets);
  if (!greenmail) return;
  const gateway = await gatewayFor(t, deployment, secrets, greenmail);

  const dir = mkdtempSync(join(tmpdir(), 'demomail-mail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  t.test('GreenMail runs the Deployment options: only bind addresses, ports and the mount path differ', async (t) => {
    const container = (deployment['spec'] as any).template.spec.containers[0]; // any: JSON built by objects.ts
    const value = (name: string): string => container.env.find((e: { name: string }) => e.name === name).value;
    const expected = [...shellWords(value(ENV.javaOpts)), ...shellWords(value(ENV.greenmailOpts))].map((w) =>
      w
        .replace(/\$\([A-Z0-9_]+\)/g, '***')
        .replace(/^(-Dgreenmail\.[a-z0-9]+\.hostname=)0\.0\.0\.0$/, '$1127.0.0.1')
        .replace(/^-Dgreenmail\.([a-z0-9]+)\.port=\d+$/, (_all, proto: string) => `-Dgreenmail.${proto}.port=${greenmail.ports[proto]}`),
    );
    t.notOk(expected.some((w) => w.startsWith('-Dgreenmail.smtps') || w.startsWith('-Dgreenmail.pop3') || w.startsWith('-Dgreenmail.setup')), 'no SMTPS, no POP3, no setup.test.*');
    t.ok(expected.includes('-Dgreenmail.smtp.hostname=127.0.0.1') && expected.includes('-Dgreenmail.api.hostname=127.0.0.1'), 'SMTP and API on loopback in the pod too');
    const started = greenmail.redactedArgs.slice(0, -2).map((w) => w.replace(/^(-Dgreenmail\.tls\.keystore\.file=).*(\/keystore\.p12)$/, '$1/tls$2'));
    t.same(started, expected);
    t.same(greenmail.redactedArgs.slice(-2)[0], '-jar');
    const users = (await (await fetch(`http://127.0.0.1:${greenmail.ports.api}/api/user`)).json()) as { login: string; email: string }[];
    t.same(users.map((u) => u.login).sort(), [imap.user, mailAddress(settings, 'imap2'), smtp.user].sort(), 'the three users, login = full address');
  });

  // The real `demomail install-ca` turns the rendered CA into the files an injected pod gets.
  const cli = ensureBuilt();
  const caDir = join(dir, 'etc-demomail');
  const install = spawnSync(process.execPath, [cli, 'install-ca', '--dir', caDir], { env: { ...process.env, DEMOMAIL_CA_PEM: plan.mailCaBundle }, encoding: 'utf8' });
  t.equal(install.status, 0, `install-ca: ${install.stderr}`);
  const bundlePath = join(caDir, 'ca-bundle.crt');
  const bundle = readFileSync(bundlePath, 'utf8');
  const otherCa = join(dir, 'other-ca.crt');
  writeFileSync(otherCa, createCertificateAuthority({ commonName: 'some other CA' }).certPem);

  // nodemailer over SMTPS (the gateway's 465) to 127.0.0.1, verifying the certificate for `localhost` against `ca`.
  const smtps = (auth: { user: string; pass: string }, ca: string) => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gateway.ports.smtps,
      secure: true,
      auth,
      tls: { ca, servername: 'localhost', rejectUnauthorized: true, minVersion: 'TLSv1.2' },
    });
    t.teardown(() => transport.close());
    return transport;
  };

  const subject = `demomail integration ${Date.now()}`;
  const outside = 'someone@example.org';

  await t.test('SMTPS with AUTH as the SMTP user, TLS verified for localhost against the bundle', async (t) => {
    const transport = smtps(smtp, bundle);
    const info = await transport.sendMail({ from: smtp.user, to: [imap.user, outside], subject, text: 'hello from the integration test' });
    t.same([...info.accepted].sort(), [imap.user, outside].sort(), 'both recipients accepted');
    t.same(info.rejected, []);
  });

  await t.test('a wrong SMTP password is refused', async (t) => {
    const transport = smtps({ user: smtp.user, pass: `${smtp.pass}x` }, bundle);
    const err = (await transport.sendMail({ from: smtp.user, to: imap.user, subject: 'nope', text: 'x' }).then(() => undefined, (e: unknown) => e)) as { code?: string } | undefined;
    t.equal(err?.code, 'EAUTH');
  });

  await t.test('SMTPS refuses a client that trusts another CA', async (t) => {
    const transport = smtps(smtp, readFileSync(otherCa, 'utf8'));
    const err = (await transport.verify().then(() => undefined, (e: unknown) => e)) as { code?: string; message?: string } | undefined;
    t.match(err?.message ?? '', /self.signed|unable to (get|verify)|certificate/i, 'TLS verification fails');
  });

  await t.test('the outside recipient is captured in GreenMail, not relayed', async (t) => {
    const res = await fetch(`http://127.0.0.1:${greenmail.ports.api}/api/user/${encodeURIComponent(outside)}/messages/`);
    t.equal(res.status, 200, 'GreenMail auto-created a local mailbox for the outside address');
    const messages = (await res.json()) as { subject: string }[];
    t.same(messages.map((m) => m.subject), [subject]);
  });

  await t.test('IMAPS as the IMAP user: find, CREATE nested, UID COPY, \\Deleted, EXPUNGE', async (t) => {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: greenmail.ports.imaps,
      secure: true,
      servername: 'localhost',
      auth: imap,
      tls: { ca: bundle, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      logger: false,
    });
    await client.connect();
    t.teardown(async () => {
      if (client.usable) await client.logout();
    });
    const folder = 'INBOX.CiviMail.ignored';
    const lock = await client.getMailboxLock('INBOX');
    try {
      const uids = (await client.search({ subject }, { uid: true })) || [];
      t.equal(uids.length, 1, 'the message is in INBOX');
      const uid = String(uids[0]);
      const created = await client.mailboxCreate(folder);
      t.equal(created.path, folder);
      t.ok((await client.list()).some((m) => m.path === folder && m.delimiter === '.'), 'listed with delimiter "."');
      const copied = await client.messageCopy(uid, folder, { uid: true });
      t.ok(copied, 'UID COPY accepted');
      t.equal((await client.status(folder, { messages: true }) || { messages: -1 }).messages, 1, 'one message in the new folder');
      t.ok(await client.messageFlagsAdd(uid, ['\\Deleted'], { uid: true }));
      const flagged = await client.fetchOne(uid, { flags: true }, { uid: true });
      t.ok(flagged && flagged.flags?.has('\\Deleted'), 'flagged \\Deleted');
      t.equal(client.mailbox && client.mailbox.exists, 1, 'still there before EXPUNGE');
      t.ok(await client.messageDelete(uid, { uid: true }), 'EXPUNGE');
      t.equal(client.mailbox && client.mailbox.exists, 0, 'INBOX empty after EXPUNGE');
      t.equal((await client.status(folder, { messages: true }) || { messages: -1 }).messages, 1, 'the copy survives');
    } finally {
      lock.release();
    }
  });

  await t.test('a wrong IMAP password is refused', async (t) => {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: greenmail.ports.imaps,
      secure: true,
      servername: 'localhost',
      auth: { user: imap.user, pass: 'wrong-password' },
      tls: { ca: bundle, rejectUnauthorized: true },
      logger: false,
    });
    const err = (await client.connect().then(() => undefined, (e: unknown) => e)) as { authenticationFailed?: boolean } | undefined;
    t.equal(err?.authenticationFailed, true);
    client.close();
  });

  // The password goes to curl on stdin (a config file), not on its command line where ps would show it.
  const curl = (cacert: string) =>
    spawnSync('curl', ['--silent', '--show-error', '--max-time', '20', '--cacert', cacert, '--resolve', `localhost:${greenmail.ports.imaps}:127.0.0.1`, '-K', '-', `imaps://localhost:${greenmail.ports.imaps}/`], {
      input: `user = "${imap.user}:${imap.pass}"\n`,
      encoding: 'utf8',
    });

  await t.test('curl --cacert bundle imaps:// lists the mailboxes; another CA is refused', async (t) => {
    const ok = curl(bundlePath);
    t.equal(ok.status, 0, ok.stderr);
    t.match(ok.stdout, /INBOX\.CiviMail\.ignored/, 'the folder created over IMAP is listed');
    const bad = curl(otherCa);
    t.equal(bad.status, 60, `curl exit 60 = peer certificate cannot be authenticated (${bad.stderr.trim()})`);
  });

  const sClient = (caFile: string) =>
    spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${greenmail.ports.imaps}`, '-servername', 'localhost', '-verify_hostname', 'localhost', '-verify_return_error', '-CAfile', caFile, '-crlf', '-ign_eof'], {
      // -ign_eof keeps reading after our LOGOUT until GreenMail closes the connection.
      input: 'a1 LOGOUT\n',
      encoding: 'utf8',
      timeout: 20_000,
    });

  await t.test('openssl s_client -verify_return_error: ok with the bundle, fails with another CA', async (t) => {
    const ok = sClient(bundlePath);
    t.equal(ok.status, 0, ok.stderr.split('\n').slice(-5).join('\n'));
    t.match(ok.stdout, /Verify return code: 0 \(ok\)/);
    t.match(ok.stdout, /\* OK[\s\S]*\* BYE/, 'IMAP greeting and LOGOUT over TLS');
    const bad = sClient(otherCa);
    t.not(bad.status, 0);
    t.match(`${bad.stdout}${bad.stderr}`, /verify error|unable to get local issuer certificate/);
  });

  // CiviCRM is PHP: its SMTP (PEAR Net_SMTP) and IMAP (ezcMail) code opens ssl://HOST:PORT streams with
  // PHP's default context. Prove that the php/zz-demomail.ini install-ca wrote is all PHP needs, the way
  // an injected pod with the demomail/php-ini annotation runs it (PHP_INI_SCAN_DIR=:/etc/demomail/php).
  await t.test('PHP (like CiviCRM) sends over ssl:// and reads over IMAPS with only the injected php.ini', async (t) => {
    if (spawnSync('php', ['--version'], { stdio: 'ignore' }).status !== 0) return unavailable(t, 'php (Debian php-cli) is not installed');
    const script = join(ROOT, 'test/fixtures/php/civicrm-like-client.php');
    // No SSL_CERT_FILE: OpenSSL would honour it as its default CA file, and we want to see the ini work alone.
    const { SSL_CERT_FILE: _ignored, ...baseEnv } = process.env;
    const php = (scanDir: string, args: string[], user: { user: string; pass: string }) =>
      spawnSync('php', [script, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...baseEnv, PHP_INI_SCAN_DIR: scanDir, MAIL_USER: user.user, MAIL_PASS: user.pass } });
    const injected = `:${join(caDir, 'php')}`;
    const cafile = spawnSync('php', ['-r', 'echo ini_get("openssl.cafile");'], { encoding: 'utf8', env: { ...baseEnv, PHP_INI_SCAN_DIR: injected } });
    t.equal(cafile.stdout, bundlePath, 'openssl.cafile comes from php/zz-demomail.ini');

    const phpSubject = `civicrm-like php ${Date.now()}`;
    const sent = php(injected, ['smtp', 'localhost', String(gateway.ports.smtps), imap.user, phpSubject], smtp);
    t.equal(sent.status, 0, 'SMTP over ssl:// with AUTH LOGIN', { stderr: sent.stderr });
    const read = php(injected, ['imap', 'localhost', String(greenmail.ports.imaps), phpSubject], imap);
    t.equal(read.status, 0, 'IMAP over ssl://: LOGIN, SELECT INBOX, UID SEARCH finds the PHP mail', { stderr: read.stderr });

    const withoutIni = php('', ['smtp', 'localhost', String(gateway.ports.smtps), imap.user, 'never'], smtp);
    t.equal(withoutIni.status, 2, 'without the injected ini PHP refuses the private CA', { stderr: withoutIni.stderr });
    t.match(withoutIni.stderr, /certificate verify failed|connect ssl:/);
  });

  t.test('GreenMail and the gateway printed no password', async (t) => {
    for (const output of [greenmail.logTail(400), gateway.logTail(400)]) {
      t.ok(output.length > 0);
      for (const value of allSecretValues) t.notOk(output.includes(value));
    }
  });
});
