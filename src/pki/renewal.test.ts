import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, createServerCertificate } from './certificates.js';
import { caConstraintProblem, caRenewalDue, renewalDue, sanDifference } from './renewal.js';

const CI = process.env['CI'] === 'true';
const DAY = 86400000;
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY);

const ca = createCertificateAuthority({ commonName: 'demomail mail CA', now: T0 });
const sameNameOtherCa = createCertificateAuthority({ commonName: 'demomail mail CA', now: T0 });
const otherCa = createCertificateAuthority({ commonName: 'someone else', now: T0 });
const sans = ['smtpdemo', 'smtpdemo.demomail.svc', 'localhost', '127.0.0.1', '::1'];
const leaf = createServerCertificate({ ca, commonName: 'smtpdemo', sans, now: T0 });
const fromSameName = createServerCertificate({ ca: sameNameOtherCa, commonName: 'smtpdemo', sans, now: T0 });
const fromOther = createServerCertificate({ ca: otherCa, commonName: 'smtpdemo', sans, now: T0 });

// notBefore = T0 - 5 min, notAfter = T0 + 365 d; renew after notAfter - lifetime/3.
const notBefore = T0.getTime() - 5 * 60000;
const notAfter = T0.getTime() + 365 * DAY;
const renewAfter = notAfter - (notAfter - notBefore) / 3;
const iso = (ms: number) => new Date(ms).toISOString();

interface Case {
  name: string;
  cert: string | undefined;
  now: Date;
  wantedSans?: string[];
  keyPem?: string;
  due: boolean;
  reason: RegExp | string;
}

const cases: Case[] = [
  { name: 'missing', cert: undefined, now: at(1), due: true, reason: 'certificate is missing' },
  { name: 'empty text', cert: '  \n', now: at(1), due: true, reason: 'certificate is missing' },
  { name: 'garbage', cert: 'not a certificate', now: at(1), due: true, reason: /^certificate cannot be parsed: no PEM certificate found/ },
  { name: 'a private key instead', cert: leaf.keyPem, now: at(1), due: true, reason: /^certificate cannot be parsed: .*only CERTIFICATE blocks/ },
  { name: 'other CA', cert: fromOther.certPem, now: at(1), due: true, reason: 'certificate was issued by "CN=someone else", not by the current CA "CN=demomail mail CA"' },
  { name: 'same CA name, other key (CA was replaced)', cert: fromSameName.certPem, now: at(1), due: true, reason: /not signed by the current CA .*different key/ },
  { name: 'the CA itself', cert: ca.certPem, now: at(1), due: false, reason: /^valid until/ , wantedSans: [] },
  { name: 'not valid yet', cert: leaf.certPem, now: at(-1), due: true, reason: `certificate is not valid yet (valid from ${iso(notBefore)})` },
  { name: 'fresh', cert: leaf.certPem, now: at(0), due: false, reason: `valid until ${iso(notAfter)}, renew after ${iso(renewAfter)}` },
  { name: 'half-way', cert: leaf.certPem, now: at(182), due: false, reason: /^valid until/ },
  { name: 'one ms before the two-thirds mark', cert: leaf.certPem, now: new Date(renewAfter - 1), due: false, reason: /^valid until/ },
  { name: 'at the two-thirds mark', cert: leaf.certPem, now: new Date(renewAfter), due: true, reason: `less than a third of the lifetime remains (expires ${iso(notAfter)}, renew after ${iso(renewAfter)})` },
  { name: 'last day', cert: leaf.certPem, now: at(364.5), due: true, reason: /less than a third/ },
  { name: 'expired', cert: leaf.certPem, now: new Date(notAfter), due: true, reason: `certificate expired at ${iso(notAfter)}` },
  { name: 'long expired', cert: leaf.certPem, now: at(1000), due: true, reason: /expired/ },
  { name: 'SANs in another order', cert: leaf.certPem, now: at(1), wantedSans: [...sans].reverse(), due: false, reason: /^valid until/ },
  { name: 'SANs differ only in case and IP spelling', cert: leaf.certPem, now: at(1), wantedSans: ['SMTPDEMO', 'smtpdemo.demomail.SVC', 'LocalHost', '127.0.0.1', '0:0:0:0:0:0:0:1', '[::1]'], due: false, reason: /^valid until/ },
  { name: 'a SAN was added', cert: leaf.certPem, now: at(1), wantedSans: [...sans, 'mail.example.org'], due: true, reason: 'SAN list differs: missing DNS:mail.example.org' },
  { name: 'a SAN was removed', cert: leaf.certPem, now: at(1), wantedSans: sans.filter((s) => s !== '::1'), due: true, reason: 'SAN list differs: no longer wanted IP:::1' },
  { name: 'cluster domain changed', cert: leaf.certPem, now: at(1), wantedSans: ['smtpdemo', 'smtpdemo.demomail.svc.corp.local', 'localhost', '127.0.0.1', '::1'], due: true, reason: 'SAN list differs: missing DNS:smtpdemo.demomail.svc.corp.local; no longer wanted DNS:smtpdemo.demomail.svc' },
  { name: 'expiry beats SANs', cert: leaf.certPem, now: at(400), wantedSans: ['other'], due: true, reason: /expired/ },
  { name: 'matching key', cert: leaf.certPem, now: at(1), keyPem: leaf.keyPem, due: false, reason: /^valid until/ },
  { name: 'key of another certificate', cert: leaf.certPem, now: at(1), keyPem: fromOther.keyPem, due: true, reason: 'private key does not belong to the certificate' },
  { name: 'unreadable key', cert: leaf.certPem, now: at(1), keyPem: 'nope', due: true, reason: /^private key cannot be read/ },
];

t.test('renewalDue table', async (t) => {
  for (const c of cases) {
    const decision = renewalDue(c.cert, {
      now: c.now,
      wantedSans: c.wantedSans ?? sans,
      issuerPem: ca.certPem,
      ...(c.keyPem === undefined ? {} : { keyPem: c.keyPem }),
    });
    t.equal(decision.due, c.due, `${c.name}: due=${c.due} (${decision.reason})`);
    if (typeof c.reason === 'string') t.equal(decision.reason, c.reason, `${c.name}: reason`);
    else t.match(decision.reason, c.reason, `${c.name}: reason`);
  }
});

t.test('renewalDue with an unusable issuer is a caller error', async (t) => {
  t.throws(() => renewalDue(leaf.certPem, { now: at(1), wantedSans: sans, issuerPem: '' }), /issuerPem is not a usable CA certificate/);
});

t.test('a renewed certificate is no longer due', async (t) => {
  const now = new Date(renewAfter + DAY);
  t.ok(renewalDue(leaf.certPem, { now, wantedSans: sans, issuerPem: ca.certPem }).due);
  const renewed = createServerCertificate({ ca, commonName: 'smtpdemo', sans, now });
  t.notOk(renewalDue(renewed.certPem, { now, wantedSans: sans, issuerPem: ca.certPem }).due);
});

t.test('sanDifference', async (t) => {
  t.equal(sanDifference(leaf.certPem, sans), undefined);
  t.equal(sanDifference(leaf.certPem, [...sans, 'localhost', 'LOCALHOST']), undefined, 'duplicates in the wanted list are harmless');
  t.throws(() => sanDifference(leaf.certPem, ['bad name']), /SAN "bad name"/);
});

t.test('caRenewalDue table', async (t) => {
  const caNotAfter = T0.getTime() + 3650 * DAY;
  const caRenewAfter = caNotAfter - (caNotAfter - notBefore) / 3;
  const table: Array<{ name: string; pem: string | undefined; now: Date; keyPem?: string; due: boolean; reason: RegExp | string }> = [
    { name: 'missing', pem: undefined, now: at(1), due: true, reason: 'CA certificate is missing' },
    { name: 'garbage', pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', now: at(1), due: true, reason: /^CA certificate cannot be parsed: .*does not decode as X\.509/ },
    { name: 'a leaf', pem: leaf.certPem, now: at(1), due: true, reason: '"CN=smtpdemo" is not a CA certificate (needs basicConstraints cA=true and a keyUsage with keyCertSign)' },
    { name: 'fresh', pem: ca.certPem, now: at(1), due: false, reason: `valid until ${iso(caNotAfter)}, renew after ${iso(caRenewAfter)}` },
    { name: 'six years in', pem: ca.certPem, now: at(365 * 6), due: false, reason: /^valid until/ },
    { name: 'under a third left', pem: ca.certPem, now: new Date(caRenewAfter), due: true, reason: /^CA less than a third of the lifetime remains/ },
    { name: 'expired', pem: ca.certPem, now: at(3651), due: true, reason: /^CA certificate expired at/ },
    { name: 'not valid yet', pem: ca.certPem, now: at(-1), due: true, reason: /^CA certificate is not valid yet/ },
    { name: 'matching key', pem: ca.certPem, now: at(1), keyPem: ca.keyPem, due: false, reason: /^valid until/ },
    { name: 'wrong key', pem: ca.certPem, now: at(1), keyPem: otherCa.keyPem, due: true, reason: 'CA private key does not belong to the certificate' },
  ];
  for (const c of table) {
    const decision = caRenewalDue(c.pem, { now: c.now, ...(c.keyPem === undefined ? {} : { keyPem: c.keyPem }) });
    t.equal(decision.due, c.due, `${c.name}: due=${c.due} (${decision.reason})`);
    if (typeof c.reason === 'string') t.equal(decision.reason, c.reason, `${c.name}: reason`);
    else t.match(decision.reason, c.reason, `${c.name}: reason`);
  }
});

const noOpenssl = spawnSync('openssl', ['version']).status !== 0;
t.test('caRenewalDue refuses CAs that cannot be our root', { skip: noOpenssl && !CI ? 'openssl not installed (SKIPPED)' : false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-renewal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'root.crt'), ca.certPem);
  writeFileSync(join(dir, 'root.key'), ca.keyPem);
  // An intermediate CA signed by our root: a CA, but not self-signed.
  execFileSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-noenc', '-keyout', join(dir, 'int.key'), '-subj', '/CN=intermediate', '-out', join(dir, 'int.csr')], { stdio: 'ignore' });
  writeFileSync(join(dir, 'ext.cnf'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  execFileSync('openssl', ['x509', '-req', '-in', join(dir, 'int.csr'), '-CA', join(dir, 'root.crt'), '-CAkey', join(dir, 'root.key'), '-CAcreateserial', '-days', '30', '-extfile', join(dir, 'ext.cnf'), '-out', join(dir, 'int.crt')], { stdio: 'ignore' });
  const intermediate = execFileSync('cat', [join(dir, 'int.crt')]).toString();
  t.match(caRenewalDue(intermediate, { now: new Date() }).reason, /"CN=intermediate" is not a self-signed root CA/);
  // A self-signed CA whose keyUsage forbids signing certificates.
  const noSign = execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'int.key'), '-subj', '/CN=nosign', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,digitalSignature']).toString();
  const decision = caRenewalDue(noSign, { now: new Date() });
  t.ok(decision.due);
  t.match(decision.reason, /keyCertSign/);
});

t.test('caConstraintProblem: unconstrained, permitted, not permitted', async (t) => {
  const constrained = createCertificateAuthority({ commonName: 'demomail mail CA', now: T0, permittedNames: ['smtpdemo', '127.0.0.1'] });
  t.equal(caConstraintProblem(constrained.certPem, ['smtpdemo', '127.0.0.1']), undefined);
  t.equal(caConstraintProblem(constrained.certPem, ['smtpdemo']), undefined, 'permitting more than wanted is fine');
  t.same(caConstraintProblem(constrained.certPem, ['smtpdemo', 'mail.example.org', '10.0.0.1']), {
    kind: 'not-permitted',
    message: "the mail CA's Name Constraints do not permit mail.example.org, 10.0.0.1 (EXTRA_SANS or the cluster domain changed since the CA was made)",
  });
  t.equal(caConstraintProblem(ca.certPem, ['smtpdemo'])?.kind, 'unconstrained');
});
