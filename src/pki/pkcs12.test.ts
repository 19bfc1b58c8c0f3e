import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { certificateFingerprint, createCertificateAuthority, createServerCertificate } from './certificates.js';
import { toPkcs12 } from './pkcs12.js';

const CI = process.env['CI'] === 'true';
function missing(tool: string, args: string[]): string | false {
  if (spawnSync(tool, args).status === 0) return false;
  // Under CI a missing tool must fail the suite, so do not skip there.
  return CI ? false : `${tool} not installed (SKIPPED)`;
}

const ca = createCertificateAuthority({ commonName: 'demomail p12 CA' });
const leaf = createServerCertificate({ ca, commonName: 'smtpdemo', sans: ['smtpdemo', 'localhost', '127.0.0.1'] });
const password = 'Xk3pQ9vLm2Rt7Wz8Yb4Nc6Hd';
const p12 = toPkcs12(leaf, ca.certPem, password);

const dir = mkdtempSync(join(tmpdir(), 'demomail-p12-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'keystore.p12');
writeFileSync(file, p12);

t.test('Java 17 keytool lists a PrivateKeyEntry with a chain of 2', { skip: missing('keytool', ['-help']) }, async (t) => {
  const out = spawnSync('keytool', ['-list', '-v', '-storetype', 'PKCS12', '-keystore', file, '-storepass', password], { encoding: 'utf8' });
  t.equal(out.status, 0, out.stderr + out.stdout);
  t.match(out.stdout, /Your keystore contains 1 entry/);
  t.match(out.stdout, /Alias name: demomail/);
  t.match(out.stdout, /Entry type: PrivateKeyEntry/);
  t.match(out.stdout, /Certificate chain length: 2/);
  t.match(out.stdout, /Certificate\[1\]:\s+Owner: CN=smtpdemo/);
  t.match(out.stdout, /Certificate\[2\]:\s+Owner: CN=demomail p12 CA/);
  const wrong = spawnSync('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', file, '-storepass', 'wrong-password'], { encoding: 'utf8' });
  t.not(wrong.status, 0, 'a wrong password is refused (the MAC is checked)');
});

t.test('Java can decrypt the private key (importkeystore to JKS)', { skip: missing('keytool', ['-help']) }, async (t) => {
  // `-list` does not decrypt the key bag; converting the entry does, as GreenMail's KeyManagerFactory will.
  const jks = join(dir, 'copy.jks');
  const out = spawnSync('keytool', ['-importkeystore', '-noprompt', '-srckeystore', file, '-srcstoretype', 'PKCS12', '-srcstorepass', password,
    '-destkeystore', jks, '-deststoretype', 'JKS', '-deststorepass', password, '-destkeypass', password], { encoding: 'utf8' });
  t.equal(out.status, 0, out.stderr + out.stdout);
  t.match(out.stdout + out.stderr, /1 entries successfully imported/);
});

t.test('custom alias', { skip: missing('keytool', ['-help']) }, async (t) => {
  const aliased = join(dir, 'aliased.p12');
  writeFileSync(aliased, toPkcs12(leaf, ca.certPem, password, 'greenmail'));
  const out = spawnSync('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', aliased, '-storepass', password], { encoding: 'utf8' });
  t.equal(out.status, 0, out.stderr);
  t.match(out.stdout, /^greenmail, .*PrivateKeyEntry/m);
});

t.test('OpenSSL 3 reads it without -legacy', { skip: missing('openssl', ['version']) }, async (t) => {
  const info = spawnSync('openssl', ['pkcs12', '-info', '-nokeys', '-in', file, '-passin', `pass:${password}`], { encoding: 'utf8' });
  t.equal(info.status, 0, info.stderr);
  t.match(info.stderr, /MAC: sha1/);
  t.match(info.stderr, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256/);
  t.equal(info.stdout.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2, 'leaf and CA');
  t.match(info.stdout, /friendlyName: demomail/);
  const keyOut = spawnSync('openssl', ['pkcs12', '-nocerts', '-noenc', '-in', file, '-passin', `pass:${password}`], { encoding: 'utf8' });
  t.equal(keyOut.status, 0, keyOut.stderr);
  const extracted = createPrivateKey(keyOut.stdout.slice(keyOut.stdout.indexOf('-----BEGIN')));
  t.ok(extracted.equals(createPrivateKey(leaf.keyPem)), 'the same private key comes back out');
});

t.test('Node TLS loads it as pfx', async (t) => {
  const ctx = tls.createSecureContext({ pfx: p12, passphrase: password });
  t.ok(ctx, 'secure context created');
  const server = tls.createServer({ pfx: p12, passphrase: password }, (socket) => socket.end('hi'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const peerFingerprint = await new Promise<string>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'localhost' }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fp);
    });
    socket.on('error', reject);
  });
  t.equal('sha256:' + peerFingerprint.replace(/:/g, '').toLowerCase(), certificateFingerprint(leaf.certPem));
});

t.test('input errors', async (t) => {
  t.throws(() => toPkcs12(leaf, ca.certPem, ''), /password must be non-empty printable ASCII/);
  t.throws(() => toPkcs12(leaf, ca.certPem, 'pässwort'), /printable ASCII/);
  t.throws(() => toPkcs12(leaf, ca.certPem, password, ' '), /alias is empty/);
  t.throws(() => toPkcs12({ certPem: leaf.certPem, keyPem: ca.keyPem }, ca.certPem, password), /does not belong to the certificate/);
  t.throws(() => toPkcs12({ certPem: leaf.certPem, keyPem: 'garbage' }, ca.certPem, password), /private key cannot be read/);
  t.throws(() => toPkcs12(leaf, ca.keyPem, password), /only CERTIFICATE blocks/);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  t.throws(() => toPkcs12({ certPem: leaf.certPem, keyPem: ec.export({ type: 'pkcs8', format: 'pem' }) as string }, ca.certPem, password), /is ec; node-forge writes RSA keys only/);
  // The CA certificate appearing twice (in tls.crt and ca.crt) is stored once.
  const twice = toPkcs12({ certPem: leaf.certPem + ca.certPem, keyPem: leaf.keyPem }, ca.certPem, password);
  const twiceFile = join(dir, 'twice.p12');
  writeFileSync(twiceFile, twice);
  if (!missing('openssl', ['version'])) {
    const info = spawnSync('openssl', ['pkcs12', '-info', '-nokeys', '-in', twiceFile, '-passin', `pass:${password}`], { encoding: 'utf8' });
    t.equal(info.stdout.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2);
  }
});
