import t, { type Test } from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, createServerCertificate } from '../pki/certificates.js';
import { buildCaBundle, installCa, mailCaCertificates, mailCaProblems, phpIni } from './install-ca.js';

const mailCa = createCertificateAuthority({ commonName: 'demomail mail CA' });
const rootA = createCertificateAuthority({ commonName: 'Public Root A' });
const rootB = createCertificateAuthority({ commonName: 'Public Root B' });
const leaf = createServerCertificate({ ca: mailCa, commonName: 'smtpdemo', sans: ['smtpdemo'] });

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-trust-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
function listTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

t.test('buildCaBundle', async (t) => {
  const system = `# Debian style comment\n\n${rootA.certPem}\n${rootB.certPem.replace(/\n/g, '\r\n')}\n-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n`;
  t.equal(buildCaBundle(system, [mailCa.certPem]), rootA.certPem + rootB.certPem + mailCa.certPem, 'system roots in order, then the mail CA');
  t.equal(buildCaBundle(system, [mailCa.certPem]), buildCaBundle(system, [mailCa.certPem]), 'deterministic');
  t.equal(buildCaBundle(system, [rootB.certPem, mailCa.certPem, mailCa.certPem]), rootA.certPem + rootB.certPem + mailCa.certPem, 'deduplicated by DER');
  t.equal(buildCaBundle(rootA.certPem + rootA.certPem, [mailCa.certPem]), rootA.certPem + mailCa.certPem, 'duplicate system roots collapse too');
  t.equal(buildCaBundle('', [mailCa.certPem]), mailCa.certPem, 'no system roots');
  t.equal(buildCaBundle(rootA.certPem, [mailCa.certPem + rootB.certPem]), rootA.certPem + mailCa.certPem + rootB.certPem, 'several mail CAs (rollover)');
  t.equal(buildCaBundle(`-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n${rootA.certPem}`, [mailCa.certPem]), rootA.certPem + mailCa.certPem, 'a damaged system block is dropped');
  t.throws(() => buildCaBundle(rootA.certPem, [mailCa.keyPem]), /only CERTIFICATE blocks/);
  {
    const text = buildCaBundle(system, [mailCa.certPem]);
    // Not /CRL/: random base64 bodies contain that substring now and then.
    t.notOk(text.includes('X509 CRL') || text.includes('#') || text.includes('\r'), 'only certificate blocks, LF endings');
  }
});

t.test('phpIni', async (t) => {
  t.equal(phpIni('/etc/demomail'), [
    '; Written by demomail install-ca. PHP reads it when PHP_INI_SCAN_DIR includes this directory',
    '; (pods annotated demomail/php-ini: "true"): TLS from PHP streams and the curl extension then trusts',
    '; the system roots plus the demomail mail CA. "zz-" makes it load after the image\'s own ini files.',
    'openssl.cafile=/etc/demomail/ca-bundle.crt',
    'curl.cainfo=/etc/demomail/ca-bundle.crt',
    '',
  ].join('\n'));
  t.match(phpIni('/etc/demomail/'), /^openssl\.cafile=\/etc\/demomail\/ca-bundle\.crt$/m, 'trailing slash');
  t.match(phpIni('/tmp/my certs;x'), /^curl\.cainfo="\/tmp\/my certs;x\/ca-bundle\.crt"$/m, 'quoted when PHP would misread it');
  t.throws(() => phpIni('/tmp/a"b'), /cannot contain quotes/);
});

t.test('mailCaCertificates and mailCaProblems', async (t) => {
  t.same(mailCaCertificates(mailCa.certPem + mailCa.certPem), [mailCa.certPem]);
  t.throws(() => mailCaCertificates(' \n'), /^DEMOMAIL_CA_PEM is empty/);
  t.throws(() => mailCaCertificates(mailCa.certPem + mailCa.keyPem), /^DEMOMAIL_CA_PEM: PEM block 2 is a "PRIVATE KEY": only CERTIFICATE blocks are accepted/);
  t.throws(() => mailCaCertificates('hello', 'CA_FILE'), /^CA_FILE: no PEM certificate found/);
  t.same(mailCaProblems([mailCa.certPem]), []);
  t.match(mailCaProblems([leaf.certPem]), [/"CN=smtpdemo" is not a CA certificate/]);
  t.match(mailCaProblems([mailCa.certPem], new Date(Date.now() + 4000 * 86400000)), [/expired at/]);
});

t.test('installCa writes three files, world-readable, and nothing else', async (t) => {
  const root = tempDir(t);
  const dir = join(root, 'etc-demomail');
  const systemPath = join(root, 'system.crt');
  writeFileSync(systemPath, rootA.certPem + rootB.certPem);
  const warnings: string[] = [];
  const previous = process.umask(0o077);
  t.teardown(() => process.umask(previous));
  const written = await installCa({ dir, caPem: mailCa.certPem, systemBundlePath: systemPath, warn: (l) => warnings.push(l) });
  t.same(written, [join(dir, 'ca.crt'), join(dir, 'ca-bundle.crt'), join(dir, 'php', 'zz-demomail.ini')]);
  t.same(warnings, []);
  t.same(listTree(dir), ['ca-bundle.crt', 'ca.crt', 'php', join('php', 'zz-demomail.ini')], 'no temporary files');
  t.equal(readFileSync(join(dir, 'ca.crt'), 'utf8'), mailCa.certPem);
  t.equal(readFileSync(join(dir, 'ca-bundle.crt'), 'utf8'), rootA.certPem + rootB.certPem + mailCa.certPem);
  t.equal(readFileSync(join(dir, 'php', 'zz-demomail.ini'), 'utf8'), phpIni(dir));
  for (const file of written) t.equal(statSync(file).mode & 0o777, 0o644, `${file} is 0644 despite umask 077`);
  t.equal(statSync(join(dir, 'php')).mode & 0o777, 0o755);
  const bundleCa = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
  t.ok(new X509Certificate(leaf.certPem).checkIssued(bundleCa));

  const before = written.map((f) => readFileSync(f));
  writeFileSync(join(dir, '.ca.crt.demomail-tmp-123-abcd'), 'left by a crashed run');
  t.same(await installCa({ dir, caPem: mailCa.certPem, systemBundlePath: systemPath, warn: (l) => warnings.push(l) }), written);
  t.same(written.map((f) => readFileSync(f)), before, 're-run: same bytes');
  t.same(listTree(dir), ['ca-bundle.crt', 'ca.crt', 'php', join('php', 'zz-demomail.ini')], 'stale temporary file removed');
});

t.test('installCa system bundle problems', async (t) => {
  const root = tempDir(t);
  const warnings: string[] = [];
  const warn = (l: string) => warnings.push(l);
  await installCa({ dir: join(root, 'a'), caPem: mailCa.certPem, systemBundlePath: join(root, 'nope.crt'), warn });
  t.match(warnings, [/system CA bundle .*nope\.crt does not exist; ca-bundle\.crt holds only the mail CA/]);
  t.equal(readFileSync(join(root, 'a', 'ca-bundle.crt'), 'utf8'), mailCa.certPem);

  warnings.length = 0;
  writeFileSync(join(root, 'empty.crt'), '# nothing here\n');
  await installCa({ dir: join(root, 'b'), caPem: mailCa.certPem, systemBundlePath: join(root, 'empty.crt'), warn });
  t.match(warnings, [/contains no certificates/]);

  warnings.length = 0;
  writeFileSync(join(root, 'damaged.crt'), `${rootA.certPem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
  await installCa({ dir: join(root, 'c'), caPem: mailCa.certPem, systemBundlePath: join(root, 'damaged.crt'), warn });
  t.match(warnings, [/damaged\.crt: CERTIFICATE block 2 does not decode as X\.509.*skipped/]);
  t.equal(readFileSync(join(root, 'c', 'ca-bundle.crt'), 'utf8'), rootA.certPem + mailCa.certPem);

  mkdirSync(join(root, 'bundle-dir'));
  await t.rejects(installCa({ dir: join(root, 'd'), caPem: mailCa.certPem, systemBundlePath: join(root, 'bundle-dir'), warn }), /cannot read system CA bundle .*bundle-dir: EISDIR/);
  t.same(readdirSync(root).includes('d'), false, 'nothing written after an unreadable bundle');
});

t.test('installCa bad input leaves existing files untouched', async (t) => {
  const root = tempDir(t);
  const dir = join(root, 'ca');
  const systemPath = join(root, 'system.crt');
  writeFileSync(systemPath, rootA.certPem);
  const written = await installCa({ dir, caPem: mailCa.certPem, systemBundlePath: systemPath, warn: () => undefined });
  const before = written.map((f) => readFileSync(f, 'utf8'));
  const bad: Array<[string, RegExp]> = [
    [mailCa.certPem + mailCa.keyPem, /PRIVATE KEY": only CERTIFICATE blocks are accepted/],
    ['garbage', /no PEM certificate found/],
    ['', /DEMOMAIL_CA_PEM is empty/],
    [mailCa.certPem.slice(0, 300), /no matching "-----END"/],
  ];
  for (const [caPem, message] of bad) {
    await t.rejects(installCa({ dir, caPem, systemBundlePath: systemPath, warn: () => undefined }), message);
  }
  t.same(written.map((f) => readFileSync(f, 'utf8')), before);
  t.same(listTree(dir), ['ca-bundle.crt', 'ca.crt', 'php', join('php', 'zz-demomail.ini')]);

  writeFileSync(join(root, 'not-a-dir'), 'x');
  await t.rejects(installCa({ dir: join(root, 'not-a-dir'), caPem: mailCa.certPem, systemBundlePath: systemPath, warn: () => undefined }), /cannot create directory .*not-a-dir: it exists and is not a directory; --dir must be a writable volume/);
});
