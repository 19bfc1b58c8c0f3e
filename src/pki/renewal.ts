// The renewal rule, as cert-manager words it: renew when less than a third of the lifetime remains, when
// the certificate is missing, unreadable, not from our CA, or no longer carries the names we want.
// Pure (time comes in as `now`), so the bootstrap logs the reason and the tests are a table.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { nameConstraints, parseSans, permittedBy, splitPemCertificates, subjectAltNames } from './certificates.js';

export interface RenewalInput {
  now: Date;
  wantedSans: string[];
  /** PEM of the CA that must have signed it. */
  issuerPem: string;
  /** When given, the stored private key must belong to the certificate. */
  keyPem?: string;
}
export interface RenewalDecision {
  due: boolean;
  reason: string;
}
export interface CaRenewalInput {
  now: Date;
  /** When given, the stored private key must belong to the CA certificate. */
  keyPem?: string;
}

/** Renew once less than this fraction of the total lifetime is left. */
export const RENEW_WHEN_REMAINING_BELOW = 1 / 3;

export function renewalDue(certPem: string | undefined, input: RenewalInput): RenewalDecision {
  if (certPem === undefined || certPem.trim() === '') return due('certificate is missing');
  const cert = readCertificate(certPem);
  if (typeof cert === 'string') return due(`certificate cannot be parsed: ${cert}`);
  const issuer = readCertificate(input.issuerPem);
  if (typeof issuer === 'string') {
    // A broken CA is the caller's problem to fix first (caRenewalDue); renewing the leaf would not help.
    throw new Error(`renewalDue: issuerPem is not a usable CA certificate: ${issuer}`);
  }
  if (cert.issuer !== issuer.subject) {
    return due(`certificate was issued by "${cert.issuer}", not by the current CA "${issuer.subject}"`);
  }
  if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
    return due(`certificate is not signed by the current CA "${issuer.subject}" (same name, different key)`);
  }
  const keyProblem = input.keyPem === undefined ? undefined : keyMismatch(cert, input.keyPem);
  if (keyProblem) return due(keyProblem);
  const timing = lifetimeDecision(cert, input.now);
  if (timing.due) return timing;
  const sanProblem = sanDifference(certPem, input.wantedSans);
  if (sanProblem) return due(sanProblem);
  return timing;
}

/** Whether the CA itself must be replaced (missing, not a CA, expired, or under a third of its life). */
export function caRenewalDue(caPem: string | undefined, input: CaRenewalInput): RenewalDecision {
  const unusable = caUnusableReason(caPem, input);
  if (unusable) return due(unusable);
  const timing = lifetimeDecision(new X509Certificate(splitPemCertificates(caPem as string)[0] as string), input.now);
  return timing.due ? due(`CA ${timing.reason}`) : timing;
}

/**
 * Why this CA cannot sign anything right now (missing, unreadable, not a root CA, wrong key, outside its
 * validity), or undefined when it can. Unlike caRenewalDue, an ageing but valid CA is usable.
 */
export function caUnusableReason(caPem: string | undefined, input: CaRenewalInput): string | undefined {
  if (caPem === undefined || caPem.trim() === '') return 'CA certificate is missing';
  const cert = readCertificate(caPem);
  if (typeof cert === 'string') return `CA certificate cannot be parsed: ${cert}`;
  if (!cert.ca) return `"${cert.subject}" is not a CA certificate (needs basicConstraints cA=true and a keyUsage with keyCertSign)`;
  // checkIssued on itself is OpenSSL's X509_check_issued: names match and, when keyUsage is present,
  // it includes keyCertSign.
  if (!cert.checkIssued(cert) || !cert.verify(cert.publicKey)) {
    return `"${cert.subject}" is not a self-signed root CA allowed to sign certificates (issuer must equal subject, keyUsage must include keyCertSign)`;
  }
  const keyProblem = input.keyPem === undefined ? undefined : keyMismatch(cert, input.keyPem);
  if (keyProblem) return `CA ${keyProblem}`;
  const at = input.now.getTime();
  if (at < Date.parse(cert.validFrom)) return `CA certificate is not valid yet (valid from ${new Date(cert.validFrom).toISOString()})`;
  if (at >= Date.parse(cert.validTo)) return `CA certificate expired at ${new Date(cert.validTo).toISOString()}`;
  return undefined;
}

function due(reason: string): RenewalDecision {
  return { due: true, reason };
}

function readCertificate(pem: string): X509Certificate | string {
  try {
    return new X509Certificate(splitPemCertificates(pem)[0] as string);
  } catch (err) {
    return (err as Error).message;
  }
}

function keyMismatch(cert: X509Certificate, keyPem: string): string | undefined {
  try {
    if (cert.checkPrivateKey(createPrivateKey(keyPem))) return undefined;
    return 'private key does not belong to the certificate';
  } catch (err) {
    return `private key cannot be read: ${(err as Error).message}`;
  }
}

function lifetimeDecision(cert: X509Certificate, now: Date): RenewalDecision {
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  const at = now.getTime();
  const iso = (ms: number) => new Date(ms).toISOString();
  if (at < notBefore) return due(`certificate is not valid yet (valid from ${iso(notBefore)})`);
  if (at >= notAfter) return due(`certificate expired at ${iso(notAfter)}`);
  const renewAfter = notAfter - (notAfter - notBefore) * RENEW_WHEN_REMAINING_BELOW;
  if (at >= renewAfter) {
    return due(`less than a third of the lifetime remains (expires ${iso(notAfter)}, renew after ${iso(renewAfter)})`);
  }
  return { due: false, reason: `valid until ${iso(notAfter)}, renew after ${iso(renewAfter)}` };
}

/** Describes how the certificate's SANs differ from the wanted ones (as sets), or undefined when equal. */
export function sanDifference(certPem: string, wantedSans: string[]): string | undefined {
  const present = subjectAltNames(certPem);
  const have = new Set([...present.dns.map((d) => `DNS:${d.toLowerCase()}`), ...present.ips.map((ip) => `IP:${ip}`)]);
  const want = new Set(parseSans(wantedSans).map((san) => `${san.kind === 'ip' ? 'IP' : 'DNS'}:${san.value}`));
  const missing = [...want].filter((name) => !have.has(name)).sort();
  const extra = [...have].filter((name) => !want.has(name)).sort();
  if (missing.length === 0 && extra.length === 0) return undefined;
  const parts: string[] = [];
  if (missing.length > 0) parts.push(`missing ${missing.join(', ')}`);
  if (extra.length > 0) parts.push(`no longer wanted ${extra.join(', ')}`);
  return `SAN list differs: ${parts.join('; ')}`;
}

export interface ConstraintProblem {
  /** "unconstrained": made by a release before Name Constraints (still usable, but can vouch for any name). */
  kind: 'unconstrained' | 'not-permitted';
  message: string;
}

/**
 * Whether the CA's Name Constraints permit every wanted name (DESIGN §10), or why not. A CA without
 * constraints is reported too: it works, but can vouch for any host name.
 */
export function caConstraintProblem(caPem: string, wantedSans: string[]): ConstraintProblem | undefined {
  const constraints = nameConstraints(caPem);
  if (constraints === undefined) {
    return { kind: 'unconstrained', message: 'the mail CA has no Name Constraints (made by an older release): it can vouch for any host name to every injected pod' };
  }
  const outside = parseSans(wantedSans).filter((san) => !permittedBy(constraints, san.value)).map((san) => san.value);
  if (outside.length === 0) return undefined;
  return { kind: 'not-permitted', message: `the mail CA's Name Constraints do not permit ${outside.join(', ')} (EXTRA_SANS or the cluster domain changed since the CA was made)` };
}
