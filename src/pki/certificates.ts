// Certificates for the mail server and the webhook: one CA shape, one server-leaf shape.
// node-forge assembles the X.509 structures (Node has no certificate builder); Node's native crypto
// generates the RSA keys (forge's pure-JS prime search takes seconds), signs (forge's pure-JS RSA is
// ~50x slower) and does every check.
import { KeyObject, X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import { createRequire } from 'node:module';
import type forge from 'node-forge';

// node-forge adds ~11 MiB of RSS: loaded on first use, so `demomail webhook` (which only fingerprints
// and parses certificates with node:crypto) never pays for it.
let forgeModule: typeof forge | undefined;
function lazyForge(): typeof forge {
  forgeModule ??= createRequire(import.meta.url)('node-forge') as typeof forge;
  return forgeModule;
}

export interface KeyPairPem {
  certPem: string;
  /** PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted. */
  keyPem: string;
}
export interface CaOptions {
  commonName: string;
  validityDays?: number;
  now?: Date;
  /**
   * When given: a critical Name Constraints extension permitting only these names (DNS names and IPs, as
   * for SANs), so the CA cannot vouch for any other host although clients trust it as a root (DESIGN §10).
   */
  permittedNames?: string[];
}
export interface LeafOptions {
  ca: KeyPairPem;
  commonName: string;
  /** DNS names and IP addresses (v4 or v6), told apart automatically. The authoritative name list. */
  sans: string[];
  validityDays?: number;
  now?: Date;
}

export const CA_VALIDITY_DAYS = 3650;
export const LEAF_VALIDITY_DAYS = 365;
/** notBefore lies this far in the past so a peer whose clock runs a little behind accepts a fresh cert. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export function createCertificateAuthority(opts: CaOptions): KeyPairPem {
  const now = opts.now ?? new Date();
  const days = validityDays(opts.validityDays ?? CA_VALIDITY_DAYS, 'CA');
  const name = distinguishedName(opts.commonName, 'CA');
  const { publicKey, privateKey, keyPem } = newRsaKey();

  const cert = lazyForge().pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', critical: true, cA: true, pathLenConstraint: 0 },
    { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
    { name: 'subjectKeyIdentifier' },
    // Self-signed: the authority key is the certificate's own, so `true` (hash own key) is right here.
    { name: 'authorityKeyIdentifier', keyIdentifier: true },
    ...(opts.permittedNames === undefined ? [] : [nameConstraintsExtension(opts.permittedNames)]),
  ]);
  return { certPem: signedPem(cert, privateKey), keyPem };
}

export const NAME_CONSTRAINTS_OID = '2.5.29.30';

export interface NameConstraints {
  /** dNSName bases: a name is permitted when it equals a base or ends with "." + base. */
  dns: string[];
  /** iPAddress subtrees as "address/prefix" (canonical address text). */
  ips: string[];
}

/**
 * The DER of NameConstraints { permittedSubtrees [0] GeneralSubtrees } that forge cannot encode.
 * Trap: a dNSName constraint matches by label suffix ("smtpdemo" also permits "x.smtpdemo"), and
 * there is no exact-match form; so each wanted name is its own base, never a shared parent such as
 * "demomail.svc.cluster.local" (which would permit every Service of the namespace). A wildcard SAN
 * "*.demo.example.org" becomes the base "demo.example.org". IPs are single addresses (/32, /128).
 * Other name forms (e-mail, URI) stay unconstrained: TLS server checks use DNS names and IPs only.
 */
function nameConstraintsExtension(names: string[]) {
  const { asn1 } = lazyForge();
  const sans = parseSans(names);
  if (sans.length === 0) throw new Error('name constraints: the list of permitted names is empty; it would permit every name');
  const generalSubtree = (tag: number, bytes: string) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, false, bytes)]);
  const dnsBases = [...new Set(sans.filter((s) => s.kind === 'dns').map((s) => s.value.replace(/^\*\./, '')))];
  const subtrees = [
    ...dnsBases.map((base) => generalSubtree(2, base)),
    ...sans.flatMap((s) => (s.kind === 'ip' ? [generalSubtree(7, Buffer.concat([s.bytes, Buffer.alloc(s.bytes.length, 0xff)]).toString('binary'))] : [])),
  ];
  const value = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, subtrees)]);
  return { id: NAME_CONSTRAINTS_OID, critical: true, value };
}

/** The permitted subtrees of a CA's Name Constraints, or undefined when it has none. */
export function nameConstraints(certPem: string): NameConstraints | undefined {
  const octets = extensionValue(certPem, NAME_CONSTRAINTS_OID);
  if (octets === undefined) return undefined;
  const result: NameConstraints = { dns: [], ips: [] };
  const parts = lazyForge().asn1.fromDer(octets).value as forge.asn1.Asn1[];
  const permitted = parts.find((p) => p.tagClass === lazyForge().asn1.Class.CONTEXT_SPECIFIC && p.type === 0);
  for (const subtree of (permitted?.value ?? []) as forge.asn1.Asn1[]) {
    const base = (subtree.value as forge.asn1.Asn1[])[0];
    if (base?.tagClass !== lazyForge().asn1.Class.CONTEXT_SPECIFIC) continue;
    if (base.type === 2) result.dns.push((base.value as string).toLowerCase());
    if (base.type === 7) {
      const raw = Buffer.from(base.value as string, 'binary');
      const half = raw.length / 2;
      const prefix = [...raw.subarray(half)].reduce((bits, byte) => bits + byte.toString(2).replace(/0/g, '').length, 0);
      result.ips.push(`${ipFromBytes(raw.subarray(0, half))}/${prefix}`);
    }
  }
  return result;
}

/** Whether a SAN (DNS name or IP) falls inside the permitted subtrees, as RFC 5280 §4.2.1.10 and OpenSSL match them. */
export function permittedBy(constraints: NameConstraints, san: string): boolean {
  const parsed = parseSan(san);
  if (parsed.kind === 'dns') {
    return constraints.dns.some((base) => (base.startsWith('.') ? parsed.value.endsWith(base) : parsed.value === base || parsed.value.endsWith(`.${base}`)));
  }
  return constraints.ips.some((cidr) => {
    const [address, bits] = cidr.split('/') as [string, string];
    const net = ipToBytes(address);
    if (net.length !== parsed.bytes.length) return false;
    for (let i = 0; i < net.length; i++) {
      const maskBits = Math.max(0, Math.min(8, Number(bits) - i * 8));
      const mask = (0xff << (8 - maskBits)) & 0xff;
      if (((net[i] as number) & mask) !== ((parsed.bytes[i] as number) & mask)) return false;
    }
    return true;
  });
}

export function createServerCertificate(opts: LeafOptions): KeyPairPem {
  const now = opts.now ?? new Date();
  const days = validityDays(opts.validityDays ?? LEAF_VALIDITY_DAYS, 'server certificate');
  const sans = parseSans(opts.sans);
  if (sans.length === 0) {
    throw new Error(`server certificate "${opts.commonName}": the SAN list is empty; clients match names only against SANs, so pass at least one DNS name or IP address`);
  }
  const caCert = parseForgeCertificate(opts.ca.certPem, 'CA certificate');
  const caKey = privateKeyFromPem(opts.ca.keyPem, 'CA private key');
  const caSki = caCert.generateSubjectKeyIdentifier().getBytes();
  if (!new X509Certificate(lazyForge().pki.certificateToPem(caCert)).checkPrivateKey(caKey)) {
    throw new Error('CA private key does not belong to the CA certificate; pass the matching pair (tls.key / tls.crt of the CA Secret)');
  }
  const { publicKey, keyPem } = newRsaKey();

  const cert = lazyForge().pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  // A leaf cannot outlive its CA in any useful way: chain validation fails once the CA has expired.
  const wantedEnd = now.getTime() + days * DAY_MS;
  cert.validity.notAfter = new Date(Math.min(wantedEnd, caCert.validity.notAfter.getTime()));
  cert.setSubject(distinguishedName(opts.commonName, 'server certificate'));
  // Copy the CA's subject attributes as parsed (same string types) so issuer and subject DER match exactly.
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', critical: false, cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: sans.map((san) => (san.kind === 'ip' ? { type: 7, value: san.bytes.toString('binary') } : { type: 2, value: san.value })),
    },
    { name: 'subjectKeyIdentifier' },
    // Trap: `keyIdentifier: true` would hash this leaf's own key; the AKI must be the CA's SKI.
    { name: 'authorityKeyIdentifier', keyIdentifier: caSki },
  ]);
  return { certPem: signedPem(cert, caKey), keyPem };
}

/** "sha256:<64 lower-case hex>" of the DER of the first certificate in the PEM. */
export function certificateFingerprint(pem: string): string {
  const first = splitPemCertificates(pem)[0] as string;
  return `sha256:${createHash('sha256').update(pemToDer(first)).digest('hex')}`;
}

/** The PEM blocks of type CERTIFICATE, each normalised ("-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"); throws on any other block type or undecodable data. */
export function splitPemCertificates(pem: string): string[] {
  const blocks = pemBlocks(pem);
  if (blocks.length === 0) {
    throw new Error('no PEM certificate found: expected one or more "-----BEGIN CERTIFICATE-----" blocks');
  }
  return blocks.map((block, index) => {
    if (block.type !== 'CERTIFICATE') {
      // Never echo the block body: it may be a private key.
      throw new Error(`PEM block ${index + 1} is a "${block.type}": only CERTIFICATE blocks are accepted (never put a private key here)`);
    }
    return derToPem(certificateDer(block, index));
  });
}

export interface BundleCertificates {
  /** Normalised CERTIFICATE blocks in their original order. */
  certificates: string[];
  /** One line per block that was skipped because it is damaged (never fatal: it is the image's file). */
  problems: string[];
}

/**
 * Every certificate in a system trust bundle. Comments, blank lines and blocks of other types are skipped,
 * as OpenSSL does when it loads a CAfile; a damaged block is reported and skipped.
 */
export function certificatesInBundle(text: string, source: string): BundleCertificates {
  const result: BundleCertificates = { certificates: [], problems: [] };
  const { blocks, unterminated } = scanPemBlocks(text);
  if (unterminated > 0) result.problems.push(`${source}: ${unterminated} "-----BEGIN" line(s) without a matching "-----END" line ignored`);
  blocks.forEach((block, index) => {
    if (block.type !== 'CERTIFICATE') return;
    try {
      result.certificates.push(derToPem(certificateDer(block, index, source)));
    } catch (err) {
      result.problems.push(`${(err as Error).message}; skipped`);
    }
  });
  return result;
}

export interface SubjectAltNames {
  dns: string[];
  /** Canonical text form (IPv6 compressed, lower case). */
  ips: string[];
}

/** The SAN extension of a certificate, read from its DER (works for any key type). */
export function subjectAltNames(certPem: string): SubjectAltNames {
  const result: SubjectAltNames = { dns: [], ips: [] };
  const octets = extensionValue(certPem, '2.5.29.17');
  if (octets === undefined) return result;
  const names = lazyForge().asn1.fromDer(octets).value as forge.asn1.Asn1[];
  for (const name of names) {
    if (name.tagClass !== lazyForge().asn1.Class.CONTEXT_SPECIFIC) continue;
    if (name.type === 2) result.dns.push(name.value as string);
    if (name.type === 7) result.ips.push(ipFromBytes(Buffer.from(name.value as string, 'binary')));
  }
  return result;
}

/** The extnValue bytes (binary string) of the first certificate's extension with this OID, if present. */
function extensionValue(certPem: string, oid: string): string | undefined {
  const der = pemToDer(splitPemCertificates(certPem)[0] as string);
  const cert = lazyForge().asn1.fromDer(lazyForge().util.createBuffer(der.toString('binary')));
  const tbs = (cert.value as forge.asn1.Asn1[])[0] as forge.asn1.Asn1;
  const explicitExtensions = (tbs.value as forge.asn1.Asn1[]).find(
    (node) => node.tagClass === lazyForge().asn1.Class.CONTEXT_SPECIFIC && node.type === 3,
  );
  if (!explicitExtensions) return undefined;
  const extensions = ((explicitExtensions.value as forge.asn1.Asn1[])[0]?.value ?? []) as forge.asn1.Asn1[];
  for (const ext of extensions) {
    const parts = ext.value as forge.asn1.Asn1[];
    if (lazyForge().asn1.derToOid((parts[0] as forge.asn1.Asn1).value as string) !== oid) continue;
    return (parts[parts.length - 1] as forge.asn1.Asn1).value as string;
  }
  return undefined;
}

export type ParsedSan = { kind: 'dns'; value: string } | { kind: 'ip'; value: string; bytes: Buffer };

/**
 * Classifies and validates SAN strings: IP literals (v4, v6, IPv4-mapped v6, optionally in [brackets])
 * become IP SANs, everything else must be a DNS name (a leading "*." wildcard is allowed).
 * Duplicates (case-insensitive, IPs by value) are dropped, first occurrence wins.
 */
export function parseSans(sans: readonly string[]): ParsedSan[] {
  const seen = new Set<string>();
  const out: ParsedSan[] = [];
  for (const raw of sans) {
    const san = parseSan(raw);
    const key = `${san.kind}:${san.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(san);
  }
  return out;
}

export function parseSan(raw: string): ParsedSan {
  const text = raw.trim();
  const unbracketed = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(unbracketed) !== 0) {
    if (unbracketed.includes('%')) {
      throw new Error(`SAN "${raw}": an IPv6 zone id (%…) cannot go in a certificate; drop the zone`);
    }
    const bytes = ipToBytes(unbracketed);
    return { kind: 'ip', value: ipFromBytes(bytes), bytes };
  }
  const dns = text.toLowerCase();
  if (!isDnsName(dns)) {
    throw new Error(`SAN "${raw}" is neither an IP address nor a valid DNS name (letters, digits, "-", dot-separated labels of 1-63 characters, optional leading "*.")`);
  }
  return { kind: 'dns', value: dns };
}

function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  return labels.every(
    (label, i) => (i === 0 && label === '*' && labels.length > 1) || /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label),
  );
}

/** 4 or 16 network-order bytes of an IP literal that `net.isIP` accepts. */
export function ipToBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map((part) => Number(part)));
  let text = ip;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const quad = (v4[1] as string).split('.').map(Number);
    tail.push((quad[0] as number) * 256 + (quad[1] as number), (quad[2] as number) * 256 + (quad[3] as number));
    text = text.slice(0, v4.index) + '0:0'; // placeholder groups, replaced below
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(rest === undefined ? 0 : missing).fill('0'), ...restGroups].map((g) => parseInt(g, 16));
  if (tail.length === 2) groups.splice(6, 2, tail[0] as number, tail[1] as number);
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(group, i * 2));
  return bytes;
}

/** Canonical text for 4 or 16 address bytes (IPv6 as WHATWG/RFC 5952 compresses it). */
export function ipFromBytes(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) return `invalid-ip:${bytes.toString('hex')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

// ---------------------------------------------------------------------------------------------
// PEM plumbing

interface PemBlock {
  type: string;
  body: string;
}

function pemBlocks(text: string, source?: string): PemBlock[] {
  const prefix = source ? `${source}: ` : '';
  const { blocks, unterminated, mismatch } = scanPemBlocks(text);
  if (mismatch) {
    throw new Error(`${prefix}PEM block ${mismatch.index + 1} starts as "${mismatch.begin}" but ends as "${mismatch.end}"; the PEM text is damaged`);
  }
  if (unterminated > 0) {
    throw new Error(`${prefix}a "-----BEGIN" line has no matching "-----END" line; the PEM text is truncated or damaged`);
  }
  return blocks;
}

interface PemScan {
  blocks: PemBlock[];
  unterminated: number;
  mismatch?: { index: number; begin: string; end: string };
}

function scanPemBlocks(text: string): PemScan {
  const scan: PemScan = { blocks: [], unterminated: 0 };
  const pattern = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(text)) !== null) {
    const [, type, body, endType] = match as unknown as [string, string, string, string];
    if (type !== endType) {
      scan.mismatch ??= { index: scan.blocks.length, begin: type, end: endType };
      continue;
    }
    scan.blocks.push({ type, body });
  }
  const begins = text.match(/-----BEGIN /g)?.length ?? 0;
  scan.unterminated = begins - scan.blocks.length - (scan.mismatch ? 1 : 0);
  return scan;
}

function certificateDer(block: PemBlock, index: number, source?: string): Buffer {
  const where = `${source ? `${source}: ` : ''}CERTIFICATE block ${index + 1}`;
  if (block.body.includes(':')) {
    throw new Error(`${where} carries PEM headers (encrypted or legacy PEM); pass a plain X.509 certificate`);
  }
  const base64 = block.body.replace(/\s+/g, '');
  if (base64 === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw new Error(`${where} is not valid base64`);
  }
  const der = Buffer.from(base64, 'base64');
  if (derLength(der) !== der.length) {
    throw new Error(`${where} does not decode as X.509 (the DER length does not match the data)`);
  }
  try {
    new X509Certificate(der);
  } catch (err) {
    throw new Error(`${where} does not decode as X.509: ${(err as Error).message}`);
  }
  return der;
}

/** Total length of the outer DER SEQUENCE, or -1 when the header is not one. */
function derLength(der: Buffer): number {
  if (der.length < 2 || der[0] !== 0x30) return -1;
  const first = der[1] as number;
  if (first < 0x80) return 2 + first;
  const count = first & 0x7f;
  if (count === 0 || count > 4 || der.length < 2 + count) return -1;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + (der[2 + i] as number);
  return 2 + count + length;
}

export function pemToDer(pem: string): Buffer {
  const body = pem.replace(/-----(BEGIN|END) [A-Z0-9 ]+-----/g, '').replace(/\s+/g, '');
  return Buffer.from(body, 'base64');
}

export function derToPem(der: Buffer, type = 'CERTIFICATE'): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

function normalisedPem(pem: string): string {
  return derToPem(pemToDer(pem));
}

// ---------------------------------------------------------------------------------------------
// Keys, names, serials

function newRsaKey(): { publicKey: forge.pki.rsa.PublicKey; privateKey: KeyObject; keyPem: string } {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const spkiPem = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  return { publicKey: lazyForge().pki.publicKeyFromPem(spkiPem) as forge.pki.rsa.PublicKey, privateKey: pair.privateKey, keyPem };
}

/** What forge's cert.sign() does, with the RSA operation done by Node. */
function signedPem(cert: forge.pki.Certificate, key: KeyObject): string {
  cert.md = lazyForge().md.sha256.create();
  cert.signatureOid = cert.siginfo.algorithmOid = lazyForge().pki.oids['sha256WithRSAEncryption'] as string;
  // getTBSCertificate is public in forge but missing from @types/node-forge.
  const pki = lazyForge().pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };
  cert.tbsCertificate = pki.getTBSCertificate(cert);
  const tbs = Buffer.from(lazyForge().asn1.toDer(cert.tbsCertificate).getBytes(), 'binary');
  cert.signature = sign('sha256', tbs, key).toString('binary');
  return normalisedPem(lazyForge().pki.certificateToPem(cert));
}

function privateKeyFromPem(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${what} cannot be used: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new Error(`${what} cannot be used: it is a ${key.asymmetricKeyType ?? 'unknown'} key; certificates here are signed with RSA`);
  }
  return key;
}

function parseForgeCertificate(pem: string, what: string): forge.pki.Certificate {
  try {
    return lazyForge().pki.certificateFromPem(splitPemCertificates(pem)[0] as string);
  } catch (err) {
    throw new Error(`${what} cannot be read: ${(err as Error).message}`);
  }
}

function distinguishedName(commonName: string, what: string): forge.pki.CertificateField[] {
  if (typeof commonName !== 'string' || commonName.trim() === '') {
    throw new Error(`${what}: commonName is empty; give it a name (e.g. "demomail mail CA")`);
  }
  // UTF8String: PrintableString (forge's default) cannot hold "*", "_" or "@". @types/node-forge
  // mistypes valueTagClass as an asn1 Class, hence the cast.
  const field = { shortName: 'CN', value: commonName, valueTagClass: lazyForge().asn1.Type.UTF8 };
  return [field as unknown as forge.pki.CertificateField];
}

function validityDays(days: number, what: string): number {
  if (!Number.isFinite(days) || days <= 0) {
    throw new Error(`${what}: validityDays must be a positive number of days, got ${days}`);
  }
  return days;
}

/**
 * 128 random bits as a positive DER INTEGER: high bit cleared (else it would read as negative) and the
 * first byte non-zero (else DER would drop it), so at least 120 bits of entropy remain.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x7f) || 0x01;
  return bytes.toString('hex');
}
