import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority } from './certificates.js';
import { DEV_SERVING_SANS, writeDevCerts } from './dev-certs.js';

const CI = process.env['CI'] === 'true';
const FILES = ['mail-ca.crt', 'mail-ca.key', 'webhook-ca.crt', 'webhook-ca.key', 'webhook.crt', 'webhook.key'];
const DAY = 86400000;

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-devcerts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
}

t.test('fresh directory: six files, keys private, leaf valid for localhost', async (t) => {
  const dir = join(tempDir(t), 'nested', 'certs');
  const previous = process.umask(0o077);
  t.teardown(() => process.umask(previous));
  const written = await writeDevCerts(dir);
  t.same(written.map((p) => p.slice(dir.length + 1)).sort(), [...FILES].sort());
  t.ok(written.every((p) => p.startsWith('/')), 'absolute paths');
  t.same(readdirSync(dir).sort(), [...FILES].sort(), 'no temporary files left');
  for (const name of FILES) {
    const mode = statSync(join(dir, name)).mode & 0o777;
    t.equal(mode, name.endsWith('.key') ? 0o600 : 0o644, `${name} mode ${mode.toString(8)} despite umask 077`);
  }
  const ca = new X509Certificate(readFileSync(join(dir, 'webhook-ca.crt')));
  const leaf = new X509Certificate(readFileSync(join(dir, 'webhook.crt')));
  const mailCa = new X509Certificate(readFileSync(join(dir, 'mail-ca.crt')));
  t.ok(ca.ca && mailCa.ca);
  t.not(ca.fingerprint256, mailCa.fingerprint256, 'two distinct CAs');
  t.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  t.notOk(leaf.verify(mailCa.publicKey), 'the webhook leaf is not signed by the mail CA');
  t.equal(leaf.checkHost('localhost'), 'localhost');
  t.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
  t.equal(leaf.checkIP('::1'), '::1');
  t.same(DEV_SERVING_SANS, ['localhost', '127.0.0.1', '::1']);
  const openssl = spawnSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'webhook-ca.crt'), join(dir, 'webhook.crt')], { encoding: 'utf8' });
  if (openssl.error && !CI) t.comment('openssl not installed: openssl verify SKIPPED');
  else t.equal(openssl.status, 0, openssl.stdout + openssl.stderr);
});

t.test('re-run changes nothing; CAs survive leaf renewal', async (t) => {
  const dir = tempDir(t);
  await writeDevCerts(dir);
  const first = snapshot(dir);
  t.same(await writeDevCerts(dir), [], 'nothing written on a valid set');
  t.same(snapshot(dir), first, 'same bytes');

  unlinkSync(join(dir, 'webhook.crt'));
  const rewritten = await writeDevCerts(dir);
  t.same(rewritten.map((p) => p.slice(dir.length + 1)), ['webhook.crt', 'webhook.key'], 'only the leaf is re-issued');
  const second = snapshot(dir);
  for (const name of ['mail-ca.crt', 'mail-ca.key', 'webhook-ca.crt', 'webhook-ca.key']) t.equal(second[name], first[name], `${name} kept`);
  t.not(second['webhook.key'], first['webhook.key'], 'fresh key with the fresh leaf');

  const later = new Date(Date.now() + 300 * DAY);
  t.same((await writeDevCerts(dir, { now: later })).length, 2, 'leaf re-issued when under a third of its life remains');
  t.equal(snapshot(dir)['webhook-ca.crt'], first['webhook-ca.crt']);

  // A key that does not belong to the certificate is repaired by re-issuing.
  writeFileSync(join(dir, 'webhook.key'), createCertificateAuthority({ commonName: 'x' }).keyPem);
  t.same((await writeDevCerts(dir, { now: later })).length, 2);
  const leaf = new X509Certificate(readFileSync(join(dir, 'webhook.crt')));
  t.ok(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(join(dir, 'webhook.key')))));

  unlinkSync(join(dir, 'webhook.key'));
  t.same((await writeDevCerts(dir, { now: later })).length, 2, 'missing key: leaf re-issued');
});

t.test('never replaces a CA', async (t) => {
  const dir = tempDir(t);
  await writeDevCerts(dir);
  const before = snapshot(dir);
  unlinkSync(join(dir, 'mail-ca.key'));
  await t.rejects(writeDevCerts(dir), /mail-ca\.key is missing but .*mail-ca\.crt exists; restore it, or delete/);
  unlinkSync(join(dir, 'webhook-ca.crt'));
  writeFileSync(join(dir, 'mail-ca.key'), before['mail-ca.key'] as string);
  await t.rejects(writeDevCerts(dir), /webhook-ca\.crt is missing but .*webhook-ca\.key exists/);
  writeFileSync(join(dir, 'webhook-ca.crt'), before['webhook-ca.crt'] as string);
  t.same(snapshot(dir), before, 'failed runs wrote nothing');

  await t.rejects(writeDevCerts(dir, { now: new Date(Date.now() + 4000 * DAY) }), /mail-ca\.crt: CA certificate expired at .*delete .*mail-ca\.crt and .*mail-ca\.key to create a new one/);
  writeFileSync(join(dir, 'mail-ca.crt'), before['webhook.crt'] as string);
  await t.rejects(writeDevCerts(dir), /"CN=localhost" is not a CA certificate/);
  t.same(readdirSync(dir).sort(), [...FILES].sort());
});
