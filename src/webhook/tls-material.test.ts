import { spawnSync } from 'node:child_process';
import t from 'tap';
import { createCertificateAuthority, createServerCertificate } from '../pki/certificates.js';
import { MaterialError, caMaterialFrom, readMountedFile, servingMaterialFrom } from './tls-material.js';

const ca = createCertificateAuthority({ commonName: 'material test CA' });
const leaf = createServerCertificate({ ca, commonName: 'w', sans: ['localhost'] });
const other = createServerCertificate({ ca, commonName: 'w2', sans: ['localhost'] });
const files = { certFile: '/m/tls.crt', keyFile: '/m/tls.key' };

t.test('servingMaterialFrom', async (t) => {
  const ok = servingMaterialFrom(leaf.certPem, leaf.keyPem, files);
  t.match(ok.serialNumber, /^[0-9A-F]+$/);
  t.match(ok.fingerprint, /^sha256:[0-9a-f]{64}$/);
  t.ok(ok.notAfter.getTime() > Date.now());
  // A chain (leaf + CA) is what many Secrets hold: fine.
  t.equal(servingMaterialFrom(leaf.certPem + ca.certPem, leaf.keyPem, files).serialNumber, ok.serialNumber);

  const bad: Array<[string, string, string, RegExp]> = [
    ['key of another cert', leaf.certPem, other.keyPem, /\/m\/tls\.key does not belong to certificate \/m\/tls\.crt/],
    ['garbage cert', 'hello', leaf.keyPem, /\/m\/tls\.crt holds no readable PEM certificate/],
    ['empty key', leaf.certPem, '', /\/m\/tls\.key holds no readable/],
    ['truncated key', leaf.certPem, leaf.keyPem.slice(0, 200), /\/m\/tls\.key holds no readable/],
  ];
  for (const [name, cert, key, message] of bad) {
    const err = t.throws(() => servingMaterialFrom(cert, key, files), MaterialError, name) as unknown as Error;
    t.match(err.message, message, name);
    t.notMatch(err.message, /PRIVATE KEY|MII/, `${name}: no key content in the message`);
  }
});

t.test('caMaterialFrom', async (t) => {
  const second = createCertificateAuthority({ commonName: 'second' });
  const both = caMaterialFrom(`# comment\n${ca.certPem}\r\n\n${second.certPem}`, '/ca/ca.crt');
  t.equal(both.fingerprints.length, 2);
  t.equal(both.pem.match(/BEGIN CERTIFICATE/g)?.length, 2);
  t.notMatch(both.pem, /comment|\r/, 'normalised: certificate blocks only');
  const bad: Array<[string, string, RegExp]> = [
    ['empty', '', /no PEM CERTIFICATE block/],
    ['a private key', ca.certPem + ca.keyPem, /"PRIVATE KEY" PEM block; mount only the public ca.crt/],
    ['a leaf', leaf.certPem, /certificate #1 .* is not a CA/],
    ['corrupt', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', /certificate #1 cannot be decoded/],
  ];
  for (const [name, pem, message] of bad) {
    t.throws(() => caMaterialFrom(pem, '/ca/ca.crt'), message, name);
  }
});

const openssl = spawnSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], { input: leaf.certPem, encoding: 'utf8' });
const opensslMissing = openssl.error !== undefined && process.env['CI'] !== 'true';
if (opensslMissing) console.error('# SKIPPED: openssl is not installed, the fingerprint cross-check does not run');

// Under CI=true a missing openssl fails the test (stdout is empty) instead of skipping.
t.test('the fingerprint matches openssl', { skip: opensslMissing ? 'openssl not installed' : false }, async (t) => {
  t.equal(openssl.status, 0, `openssl ran (${openssl.error?.message ?? openssl.stderr})`);
  const hex = (openssl.stdout.split('=')[1] ?? '').trim().replaceAll(':', '').toLowerCase();
  t.equal(servingMaterialFrom(leaf.certPem, leaf.keyPem, files).fingerprint, `sha256:${hex}`);
});

t.test('readMountedFile says what is missing', async (t) => {
  await t.rejects(readMountedFile('/nonexistent/demomail/tls.crt', 'serving certificate'), /serving certificate \/nonexistent\/demomail\/tls\.crt does not exist \(yet\)/);
  await t.rejects(readMountedFile('/', 'mail CA file'), /cannot read mail CA file \/: EISDIR/);
});

t.test('the CA is normalised exactly as demomail inject normalises --ca-file (byte-identical pods)', async (t) => {
  const { splitPemCertificates } = await import('../pki/certificates.js');
  const second = createCertificateAuthority({ commonName: 'second for normalisation' });
  const messy = `# the mail CA\r\n${ca.certPem.replace(/\n/g, '\r\n')}\n\n${second.certPem}`;
  t.equal(caMaterialFrom(messy, '/ca/ca.crt').pem, splitPemCertificates(messy).join(''));
});
