import t from 'tap';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certificateFingerprint,
  certificatesInBundle,
  createCertificateAuthority,
  createServerCertificate,
  ipFromBytes,
  ipToBytes,
  nameConstraints,
  parseSan,
  permittedBy,
  type NameConstraints,
  parseSans,
  randomSerialHex,
  splitPemCertificates,
  subjectAltNames,
} from './certificates.js';

const CI = process.env['CI'] === 'true';
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

const ca = createCertificateAuthority({ commonName: 'demomail test CA' });
const sans = ['smtpdemo', 'smtpdemo.demomail', 'smtpdemo.demomail.svc', 'smtpdemo.demomail.svc.cluster.local', 'localhost', '127.0.0.1', '::1', '10.96.0.15', 'fd00:10:96::a'];
const leaf = createServerCertificate({ ca, commonName: 'smtpdemo.demomail.svc', sans });
const caX = new X509Certificate(ca.certPem);
const leafX = new X509Certificate(leaf.certPem);

function extensionText(pem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem }).toString();
}

t.test('CA certificate', async (t) => {
  t.ok(caX.ca, 'Node sees a CA');
  t.equal(caX.subject, 'CN=demomail test CA');
  t.equal(caX.issuer, caX.subject, 'self-issued');
  t.ok(caX.verify(caX.publicKey), 'self-signed');
  t.ok(caX.checkPrivateKey(createPrivateKey(ca.keyPem)), 'key matches');
  t.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  t.equal((createPrivateKey(ca.keyPem).asymmetricKeyDetails?.modulusLength), 2048);
  const lifetimeDays = (Date.parse(caX.validTo) - Date.parse(caX.validFrom)) / 86400000;
  t.ok(Math.abs(lifetimeDays - 3650) < 0.01, `CA lives ~3650 days (+5 min backdate), got ${lifetimeDays}`);
  t.ok(Date.parse(caX.validFrom) < Date.now() - 4 * 60 * 1000, 'notBefore backdated for clock skew');
  t.match(caX.serialNumber, /^[0-7][0-9A-F]{31}$/, '128-bit positive serial');
  t.equal(ca.certPem.match(/-----BEGIN CERTIFICATE-----/g)?.length, 1);
});

t.test('server certificate', async (t) => {
  t.notOk(leafX.ca, 'leaf is not a CA');
  t.ok(leafX.checkIssued(caX), 'checkIssued(CA)');
  t.ok(leafX.verify(caX.publicKey), 'signature verifies with the CA key');
  t.notOk(leafX.verify(leafX.publicKey), 'not self-signed');
  t.ok(leafX.checkPrivateKey(createPrivateKey(leaf.keyPem)), 'key matches');
  t.equal(leafX.subject, 'CN=smtpdemo.demomail.svc');
  t.equal(leafX.issuer, caX.subject);
  for (const san of sans) {
    if (san.includes(':') || /^\d/.test(san)) t.equal(leafX.checkIP(san), san, `checkIP ${san}`);
    else t.equal(leafX.checkHost(san), san, `checkHost ${san}`);
  }
  t.equal(leafX.checkHost('evil.example'), undefined, 'other names do not match');
  t.equal(leafX.checkIP('127.0.0.2'), undefined, 'other IPs do not match');
  t.same(subjectAltNames(leaf.certPem), {
    dns: sans.slice(0, 5),
    ips: ['127.0.0.1', '::1', '10.96.0.15', 'fd00:10:96::a'],
  });
  const lifetimeDays = (Date.parse(leafX.validTo) - Date.parse(leafX.validFrom)) / 86400000;
  t.ok(Math.abs(lifetimeDays - 365) < 0.01, `leaf lives ~365 days, got ${lifetimeDays}`);
  t.not(leafX.serialNumber, caX.serialNumber);
  t.equal(leafX.publicKey.export({ type: 'spki', format: 'der' }).equals(createPublicKey(leaf.keyPem).export({ type: 'spki', format: 'der' })), true);
});

t.test('extensions as OpenSSL reads them', { skip: !hasOpenssl && !CI ? 'openssl not installed (SKIPPED)' : false }, async (t) => {
  const caText = extensionText(ca.certPem);
  t.match(caText, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  t.match(caText, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
  t.match(caText, /Signature Algorithm: sha256WithRSAEncryption/);
  const caSki = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(caText)?.[1];
  t.ok(caSki, 'CA has an SKI');

  const leafText = extensionText(leaf.certPem);
  t.match(leafText, /Basic Constraints:\s+CA:FALSE/);
  t.notMatch(leafText, /Basic Constraints: critical/);
  t.match(leafText, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
  t.match(leafText, /Extended Key Usage:\s+TLS Web Server Authentication/);
  t.match(leafText, /Signature Algorithm: sha256WithRSAEncryption/);
  const leafSki = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(leafText)?.[1];
  const leafAki = /Authority Key Identifier:\s+(?:keyid:)?([0-9A-F:]+)/.exec(leafText)?.[1];
  t.ok(leafSki, 'leaf has an SKI');
  t.equal(leafAki, caSki, 'leaf AKI is the CA SKI (not its own key hash)');
  t.not(leafSki, caSki);
  t.match(leafText, /IP Address:0:0:0:0:0:0:0:1/);
  t.match(leafText, /IP Address:FD00:10:96:0:0:0:0:A/);

  const dir = mkdtempSync(join(tmpdir(), 'demomail-pki-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'leaf.crt'), leaf.certPem);
  const verify = spawnSync('openssl', ['verify', '-purpose', 'sslserver', '-x509_strict', '-CAfile', join(dir, 'ca.crt'), join(dir, 'leaf.crt')]);
  t.equal(verify.status, 0, `openssl verify: ${verify.stdout}${verify.stderr}`);
  t.match(verify.stdout.toString(), /: OK/);

  const other = createCertificateAuthority({ commonName: 'demomail test CA' });
  writeFileSync(join(dir, 'other.crt'), other.certPem);
  const wrong = spawnSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'other.crt'), join(dir, 'leaf.crt')]);
  t.not(wrong.status, 0, 'a different CA with the same name does not verify it');
});

t.test('serials are random and positive', async (t) => {
  const a = createServerCertificate({ ca, commonName: 'a', sans: ['a'] });
  const b = createServerCertificate({ ca, commonName: 'a', sans: ['a'] });
  const sa = new X509Certificate(a.certPem).serialNumber;
  const sb = new X509Certificate(b.certPem).serialNumber;
  t.not(sa, sb, 'two certificates for the same name get different serials');
  const serials = new Set(Array.from({ length: 2000 }, () => randomSerialHex()));
  t.equal(serials.size, 2000);
  for (const s of serials) {
    const first = parseInt(s.slice(0, 2), 16);
    if (first === 0 || first > 0x7f || s.length !== 32) t.fail(`bad serial ${s}`);
  }
  t.pass('2000 serials: 16 bytes, first byte 0x01-0x7f');
});

t.test('injected now and validity', async (t) => {
  const now = new Date('2030-01-01T00:00:00Z');
  const shortCa = createCertificateAuthority({ commonName: 'short', validityDays: 10, now });
  const x = new X509Certificate(shortCa.certPem);
  t.equal(new Date(x.validFrom).toISOString(), '2029-12-31T23:55:00.000Z');
  t.equal(new Date(x.validTo).toISOString(), '2030-01-11T00:00:00.000Z');
  const capped = new X509Certificate(createServerCertificate({ ca: shortCa, commonName: 'x', sans: ['x'], now }).certPem);
  t.equal(new Date(capped.validTo).toISOString(), '2030-01-11T00:00:00.000Z', 'leaf does not outlive its CA');
  t.throws(() => createCertificateAuthority({ commonName: 'x', validityDays: 0 }), /validityDays must be a positive/);
  t.throws(() => createCertificateAuthority({ commonName: ' ' }), /commonName is empty/);
});

t.test('leaf input errors', async (t) => {
  t.throws(() => createServerCertificate({ ca, commonName: 'x', sans: [] }), /SAN list is empty/);
  t.throws(() => createServerCertificate({ ca, commonName: 'x', sans: ['bad name'] }), /SAN "bad name" is neither/);
  const other = createCertificateAuthority({ commonName: 'other' });
  t.throws(() => createServerCertificate({ ca: { certPem: ca.certPem, keyPem: other.keyPem }, commonName: 'x', sans: ['x'] }), /does not belong to the CA certificate/);
  t.throws(() => createServerCertificate({ ca: { certPem: ca.certPem, keyPem: 'nope' }, commonName: 'x', sans: ['x'] }), /CA private key cannot be used/);
  t.throws(() => createServerCertificate({ ca: { certPem: 'nope', keyPem: ca.keyPem }, commonName: 'x', sans: ['x'] }), /CA certificate cannot be read/);
  // A PKCS#1 CA key (as `openssl genrsa` writes it) is accepted too.
  const pkcs1 = createPrivateKey(ca.keyPem).export({ type: 'pkcs1', format: 'pem' }) as string;
  const fromPkcs1 = createServerCertificate({ ca: { certPem: ca.certPem, keyPem: pkcs1 }, commonName: 'x', sans: ['x'] });
  t.ok(new X509Certificate(fromPkcs1.certPem).verify(caX.publicKey));
});

t.test('SAN parsing', async (t) => {
  const table: Array<[string, string, string]> = [
    ['localhost', 'dns', 'localhost'],
    ['SMTPdemo.Demomail.SVC', 'dns', 'smtpdemo.demomail.svc'],
    ['*.example.org', 'dns', '*.example.org'],
    ['127.0.0.1', 'ip', '127.0.0.1'],
    ['::1', 'ip', '::1'],
    ['[::1]', 'ip', '::1'],
    ['0:0:0:0:0:0:0:1', 'ip', '::1'],
    ['FD00:0010:0096:0000:0000:0000:0000:000A', 'ip', 'fd00:10:96::a'],
    ['::ffff:10.0.0.1', 'ip', '::ffff:a00:1'],
    ['2001:db8::', 'ip', '2001:db8::'],
    ['1:2:3:4:5:6:7:8', 'ip', '1:2:3:4:5:6:7:8'],
  ];
  for (const [input, kind, value] of table) {
    const san = parseSan(input);
    t.same([san.kind, san.value], [kind, value], input);
  }
  for (const bad of ['', 'a b', '-x.example', 'x..y', '*', 'a.*.b', 'x_y', 'fe80::1%eth0', `${'a'.repeat(64)}.example`]) {
    t.throws(() => parseSan(bad), /SAN/, `rejects ${JSON.stringify(bad)}`);
  }
  t.same(parseSans(['a', 'A', '::1', '0::1', 'b']).map((s) => s.value), ['a', '::1', 'b'], 'deduplicated, order kept');
  t.same([...ipToBytes('1.2.3.4')], [1, 2, 3, 4]);
  t.equal(ipToBytes('::ffff:1.2.3.4').toString('hex'), '00000000000000000000ffff01020304');
  t.equal(ipFromBytes(Buffer.from([1, 2, 3])), 'invalid-ip:010203');
});

t.test('fingerprint', async (t) => {
  const expected = 'sha256:' + caX.fingerprint256.replace(/:/g, '').toLowerCase();
  t.equal(certificateFingerprint(ca.certPem), expected);
  t.match(certificateFingerprint(ca.certPem), /^sha256:[0-9a-f]{64}$/);
  t.equal(certificateFingerprint(ca.certPem + leaf.certPem), expected, 'first certificate counts');
  t.equal(certificateFingerprint(ca.certPem.replace(/\n/g, '\r\n')), expected, 'CRLF input');
  t.throws(() => certificateFingerprint(''), /no PEM certificate found/);
});

t.test('splitPemCertificates', async (t) => {
  const bundle = `# comment line\n\n${leaf.certPem}\nsome text\n${ca.certPem.replace(/\n/g, '\r\n')}`;
  t.same(splitPemCertificates(bundle), [leaf.certPem, ca.certPem], 'normalised blocks in order');
  // Re-wrapped body (76 columns, as some tools write) normalises to the same text.
  const body = ca.certPem.split('\n').slice(1, -2).join('');
  const rewrapped = `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,76}/g)?.join('\n')}\n-----END CERTIFICATE-----`;
  t.same(splitPemCertificates(rewrapped), [ca.certPem]);

  t.throws(() => splitPemCertificates(''), /no PEM certificate found/);
  t.throws(() => splitPemCertificates('hello world'), /no PEM certificate found/);
  const keyError = t.throws(() => splitPemCertificates(ca.certPem + ca.keyPem)) as Error;
  t.match(keyError.message, /"PRIVATE KEY": only CERTIFICATE blocks are accepted/);
  t.notMatch(keyError.message, ca.keyPem.split('\n')[1] as string, 'the key is never echoed');
  t.throws(() => splitPemCertificates(createPrivateKey(ca.keyPem).export({ type: 'pkcs1', format: 'pem' }) as string), /"RSA PRIVATE KEY": only CERTIFICATE/);
  t.throws(() => splitPemCertificates('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), /does not decode as X\.509/);
  t.throws(() => splitPemCertificates('-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n'), /not valid base64/);
  t.throws(() => splitPemCertificates('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n'), /not valid base64/);
  t.throws(() => splitPemCertificates(ca.certPem.slice(0, 200)), /no matching "-----END"/);
  t.throws(() => splitPemCertificates(ca.certPem.replace('END CERTIFICATE', 'END PUBLIC KEY')), /ends as "PUBLIC KEY"/);
  const der = Buffer.from(body, 'base64');
  const trailing = Buffer.concat([der, Buffer.from([0, 0])]).toString('base64');
  t.throws(() => splitPemCertificates(`-----BEGIN CERTIFICATE-----\n${trailing}\n-----END CERTIFICATE-----\n`), /DER length/);
  const truncated = der.subarray(0, der.length - 10).toString('base64');
  t.throws(() => splitPemCertificates(`-----BEGIN CERTIFICATE-----\n${truncated}\n-----END CERTIFICATE-----\n`), /does not decode as X\.509/);
  t.throws(() => splitPemCertificates(`-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n${body}\n-----END CERTIFICATE-----\n`), /PEM headers/);
});

t.test('certificatesInBundle skips other block types and damaged blocks', async (t) => {
  const text = `## Mozilla roots\n${ca.certPem}\n-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n${leaf.certPem}`;
  t.same(certificatesInBundle(text, '/etc/ssl/certs/ca-certificates.crt'), { certificates: [ca.certPem, leaf.certPem], problems: [] });
  t.same(certificatesInBundle('', 'empty'), { certificates: [], problems: [] });
  const damaged = certificatesInBundle(`-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n${ca.certPem}-----BEGIN CERTIFICATE-----\nAAA`, '/x/bundle.crt');
  t.same(damaged.certificates, [ca.certPem]);
  t.match(damaged.problems, [/without a matching "-----END" line ignored/, /^\/x\/bundle\.crt: CERTIFICATE block 1 does not decode as X\.509.*; skipped$/]);
});

t.test('subjectAltNames of a certificate without SAN', { skip: !hasOpenssl && !CI ? 'openssl not installed (SKIPPED)' : false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-pki-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'k.pem'), ca.keyPem);
  const pem = execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'k.pem'), '-subj', '/CN=legacy', '-days', '1', '-noenc', '-addext', 'basicConstraints=CA:FALSE']).toString();
  t.same(subjectAltNames(pem), { dns: [], ips: [] });
  const ec = execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', join(dir, 'ec.key'), '-noenc', '-subj', '/CN=ec', '-days', '1', '-addext', 'subjectAltName=DNS:ec.example,IP:192.0.2.1'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  t.same(subjectAltNames(ec), { dns: ['ec.example'], ips: ['192.0.2.1'] }, 'works for non-RSA certificates');
});

t.test('Name Constraints: encoded by hand, read back, matched by label suffix', async (t) => {
  const constrained = createCertificateAuthority({ commonName: 'nc', permittedNames: ['smtpdemo', 'smtpdemo.demomail.svc', '*.demo.example.org', '127.0.0.1', '::1', 'smtpdemo'] });
  const nc = nameConstraints(constrained.certPem);
  t.same(nc, { dns: ['smtpdemo', 'smtpdemo.demomail.svc', 'demo.example.org'], ips: ['127.0.0.1/32', '::1/128'] });
  t.equal(nameConstraints(ca.certPem), undefined, 'none unless asked for');
  t.throws(() => createCertificateAuthority({ commonName: 'nc', permittedNames: [] }), /would permit every name/);
  const table: [string, boolean][] = [
    ['smtpdemo', true],
    ['SMTPDEMO', true],
    ['smtpdemo.demomail.svc', true],
    ['x.smtpdemo', true], // the suffix rule: no exact-match form exists in RFC 5280
    ['smtpdemo.demomail', false],
    ['evilsmtpdemo', false],
    ['api.stripe.com', false],
    ['a.demo.example.org', true],
    ['*.demo.example.org', true],
    ['example.org', false],
    ['127.0.0.1', true],
    ['127.0.0.2', false],
    ['::1', true],
    ['::2', false],
    ['::ffff:127.0.0.1', false],
  ];
  for (const [name, permitted] of table) t.equal(permittedBy(nc as NameConstraints, name), permitted, `${name}: ${permitted ? 'permitted' : 'not permitted'}`);
  t.equal(permittedBy({ dns: ['.example.org'], ips: ['10.0.0.0/8'] }, 'example.org'), false, 'a "."-prefixed base permits subdomains only');
  t.equal(permittedBy({ dns: ['.example.org'], ips: ['10.0.0.0/8'] }, 'a.example.org'), true);
  t.equal(permittedBy({ dns: [], ips: ['10.0.0.0/8'] }, '10.200.3.4'), true, 'prefixes shorter than 32 bits');
  t.equal(permittedBy({ dns: [], ips: ['10.128.0.0/9'] }, '10.127.3.4'), false);
  t.ok(caX.checkIssued(caX));
});
