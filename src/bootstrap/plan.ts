// The reconcile's decisions, pure: what the cluster holds now (as read) + settings + a clock + a source of
// random passwords → every object that should exist, and why each piece of secret material was
// created, reused or renewed. The apply step only compares and writes.
//
// Rules (DESIGN §2): a CA is never regenerated while valid (caRenewalDue); leaves are renewed when
// renewalDue says so, keeping the CA; passwords are never regenerated once present; during a CA rollover
// the trust bundles carry the new CA first and the previous one while it is still valid.
import { X509Certificate, createHash, createHmac, randomInt } from 'node:crypto';
import { mailserverSans, serviceDnsNames, serviceHost, type Settings } from '../config.js';
import { createCertificateAuthority, createServerCertificate, splitPemCertificates, type KeyPairPem } from '../pki/certificates.js';
import { toPkcs12 } from '../pki/pkcs12.js';
import { caConstraintProblem, caRenewalDue, renewalDue } from '../pki/renewal.js';
import { DESIRED_HASH_ANNOTATION } from './compare.js';
import { keystoreProblem } from './keystore.js';
import type { ObjectRef } from './kube.js';
import { KEYSTORE_KEY, KEYSTORE_PASSWORD_KEY } from './greenmail.js';
import {
  b64,
  caConfigMap,
  caSecret,
  credentialSecret,
  credentials,
  mailServices,
  obsoleteMailObjects,
  mailserverCommonName,
  mailserverConfigMap,
  mailserverDeployment,
  mailserverTlsSecret,
  objectKey,
  webhookTlsSecret,
  type CaMaterial,
  type LeafMaterial,
  type KubeObject,
} from './objects.js';

export interface CurrentState {
  /** Objects that exist, keyed by objectKey(kind, namespace, name); absent = not found. */
  objects: Record<string, KubeObject>;
  /** Namespaces labelled demomail/injection=enabled. */
  labelledNamespaces: string[];
}

export interface PlanOptions {
  now: Date;
  /** CSPRNG alphanumeric password; injected so tests are deterministic. */
  randomPassword: () => string;
  /** `demomail rotate-ca`: replace the mail CA even though it is valid (old one stays in the bundles while valid). */
  rotateCa?: boolean;
}

export type MaterialAction = 'created' | 'reused' | 'renewed';
export interface Decision {
  object: string;
  item: string;
  action: MaterialAction;
  reason: string;
}

export interface Plan {
  objects: KubeObject[];
  decisions: Decision[];
  /** PEM for every caBundle of the MutatingWebhookConfiguration (webhook CA, + previous during a rollover). */
  webhookCaBundle: string;
  /** PEM the webhook injects into pods (same as ConfigMap demomail-ca). */
  mailCaBundle: string;
  /** Objects of earlier releases found in the cluster, to delete (Service demomail-api). */
  obsolete: ObjectRef[];
  /** Problems that do not stop the run but need a person (an unconstrained mail CA). */
  warnings: string[];
}

export const MAIL_CA_COMMON_NAME = 'demomail mail CA';
export const WEBHOOK_CA_COMMON_NAME = 'demomail webhook CA (one-time)';
export const PASSWORD_LENGTH = 32;
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** 32 characters from [A-Za-z0-9] by crypto.randomInt (unbiased): ~190 bits, safe in -Dgreenmail.users. */
export function randomAlphanumericPassword(length = PASSWORD_LENGTH): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return out;
}

export function desiredObjects(settings: Settings, current: CurrentState, options: PlanOptions): Plan {
  const decisions: Decision[] = [];
  const ns = settings.namespace;
  const n = settings.names;
  const find = (kind: string, name: string, namespace = ns): KubeObject | undefined => current.objects[objectKey(kind, namespace, name)];

  const warnings: string[] = [];
  const mailCa = planCa(
    `Secret ${ns}/${n.caSecret}`,
    storedData(find('Secret', n.caSecret)),
    { commonName: MAIL_CA_COMMON_NAME, permittedNames: mailserverSans(settings), rotate: options.rotateCa === true },
    options.now,
    decisions,
    warnings,
  );
  const mailLeaf = planLeaf(
    `Secret ${ns}/${n.mailserverTlsSecret}`,
    storedData(find('Secret', n.mailserverTlsSecret)),
    mailCa,
    { commonName: mailserverCommonName(settings), sans: mailserverSans(settings) },
    options.now,
    decisions,
  );
  const mailTls = planKeystore(`Secret ${ns}/${n.mailserverTlsSecret}`, storedData(find('Secret', n.mailserverTlsSecret)), mailLeaf, mailCa, options, decisions);
  const webhook = planWebhookTls(
    `Secret ${ns}/${n.webhookTlsSecret}`,
    storedData(find('Secret', n.webhookTlsSecret)),
    { commonName: serviceHost(settings, n.webhookService), sans: serviceDnsNames(settings, n.webhookService) },
    options.now,
    decisions,
  );

  const passwords = {
    smtp: planPassword(`Secret ${ns}/${n.smtpSecret}`, storedData(find('Secret', n.smtpSecret)), options, decisions, settings.deployMailserver),
    imap: planPassword(`Secret ${ns}/${n.imapSecret}`, storedData(find('Secret', n.imapSecret)), options, decisions, settings.deployMailserver),
    imap2: planPassword(`Secret ${ns}/${n.imap2Secret}`, storedData(find('Secret', n.imap2Secret)), options, decisions, settings.deployMailserver),
  };
  const creds = credentials(settings, passwords);

  const objects: KubeObject[] = [
    caSecret(settings, mailCa),
    caConfigMap(settings, mailCa.bundlePem),
    mailserverTlsSecret(settings, mailTls),
    webhookTlsSecret(settings, webhook),
    ...creds.map((c) => credentialSecret(settings, c)),
    mailserverConfigMap(settings),
  ];
  if (settings.deployMailserver) {
    const tlsChecksum = sha256(JSON.stringify([mailTls.certPem, b64(mailTls.keystore)]));
    // Keyed by the CA's private key: the annotation is readable by anyone who can read Deployments,
    // and a plain hash of a password that a person chose could be guessed offline.
    const credentialsChecksum = createHmac('sha256', mailCa.keyPem).update(JSON.stringify(creds.map((c) => [c.secretName, c.localPart, c.password]))).digest('hex');
    objects.push(mailserverDeployment(settings, { tls: tlsChecksum, credentials: credentialsChecksum }), ...mailServices(settings));
  }
  // Copies for opted-in namespaces, so their pods can mount/read the credentials; never into our own.
  for (const target of [...new Set(current.labelledNamespaces)].sort()) {
    if (target === ns) continue;
    objects.push(...creds.map((c) => credentialSecret(settings, c, target)), mailserverConfigMap(settings, target));
  }
  // GreenMail's API Service of releases before the gateway: the API now listens on loopback only.
  const obsolete = settings.deployMailserver ? obsoleteMailObjects(settings).filter((ref) => find(ref.kind, ref.metadata.name) !== undefined) : [];
  return { objects: objects.map(withDesiredHash), decisions, webhookCaBundle: webhook.caBundlePem, mailCaBundle: mailCa.bundlePem, obsolete, warnings };
}

// ---------------------------------------------------------------------------------------------

/**
 * The mail CA carries Name Constraints permitting the mail server's names only (DESIGN §10). A CA that
 * does not (made by an older release) is kept with a warning rather than rolled over: a rollover
 * re-issues the mail server's certificate at once, and every pod injected before it trusts only the old
 * CA until it restarts, so an upgrade would silently break mail in running demos. `demomail rotate-ca`
 * replaces it on purpose. A constrained CA that does not permit a wanted name (EXTRA_SANS grew) stops
 * the run: signing that name would give a certificate no client accepts.
 */
function planCa(
  what: string,
  stored: StoredData,
  wanted: { commonName: string; permittedNames: string[]; rotate: boolean },
  now: Date,
  decisions: Decision[],
  warnings: string[],
): CaMaterial {
  const certPem = text(stored, 'tls.crt');
  const keyPem = text(stored, 'tls.key');
  const verdict = caRenewalDue(certPem, { now, keyPem: keyPem ?? '' });
  if (!verdict.due && !wanted.rotate && certPem !== undefined && keyPem !== undefined) {
    const problem = caConstraintProblem(certPem, wanted.permittedNames);
    const advice = 'run `demomail rotate-ca` to replace it (the previous CA stays trusted while valid), then restart the opted-in pods: they trust only the CA they started with';
    if (problem?.kind === 'not-permitted') throw new Error(`${what}: ${problem.message}; ${advice}, or undo the change`);
    if (problem) warnings.push(`${what}: ${problem.message}; kept so that running pods keep working. ${advice[0]?.toUpperCase()}${advice.slice(1)}`);
    decisions.push({ object: what, item: 'CA', action: 'reused', reason: verdict.reason });
    return { certPem, keyPem, bundlePem: trustBundle(certPem, text(stored, 'ca.crt'), now) };
  }
  const fresh = createCertificateAuthority({ commonName: wanted.commonName, now, permittedNames: wanted.permittedNames });
  const reason = verdict.due ? verdict.reason : 'replacement requested (demomail rotate-ca)';
  decisions.push({ object: what, item: 'CA', action: certPem === undefined ? 'created' : 'renewed', reason });
  // Keep the old CA trusted while it is valid: servers still presenting a leaf it signed (until they reload) keep working.
  return { ...fresh, bundlePem: trustBundle(fresh.certPem, certPem, now) };
}

/** Current CA first, then at most one previous CA certificate that is still valid and is a CA. */
export function trustBundle(currentPem: string, previousPem: string | undefined, now: Date): string {
  const current = splitPemCertificates(currentPem)[0] as string;
  const previous = safeCertificates(previousPem).filter((pem) => {
    if (pem === current) return false;
    const cert = new X509Certificate(pem);
    return cert.ca && Date.parse(cert.validTo) > now.getTime() && Date.parse(cert.validFrom) <= now.getTime();
  });
  return [current, ...previous.slice(0, 1)].join('');
}

function safeCertificates(pem: string | undefined): string[] {
  if (pem === undefined || pem.trim() === '') return [];
  try {
    return splitPemCertificates(pem).filter((block) => {
      try {
        new X509Certificate(block);
        return true;
      } catch {
        return false;
      }
    });
  } catch {
    return [];
  }
}

function planLeaf(
  what: string,
  stored: StoredData,
  ca: CaMaterial,
  wanted: { commonName: string; sans: string[] },
  now: Date,
  decisions: Decision[],
): KeyPairPem {
  const certPem = text(stored, 'tls.crt');
  const keyPem = text(stored, 'tls.key');
  const verdict = renewalDue(certPem, { now, wantedSans: wanted.sans, issuerPem: ca.certPem, keyPem: keyPem ?? '' });
  if (!verdict.due && certPem !== undefined && keyPem !== undefined) {
    decisions.push({ object: what, item: 'certificate', action: 'reused', reason: verdict.reason });
    return { certPem, keyPem };
  }
  decisions.push({ object: what, item: 'certificate', action: certPem === undefined ? 'created' : 'renewed', reason: verdict.reason });
  return createServerCertificate({ ca: { certPem: ca.certPem, keyPem: ca.keyPem }, commonName: wanted.commonName, sans: wanted.sans, now });
}

/**
 * The webhook's serving certificate comes with a one-time CA: made together with the leaf, its key
 * discarded once the leaf is signed, so no key that could mint more webhook certificates is kept
 * anywhere. Renewing the leaf therefore means a new CA too; `ca.crt` (and the caBundle) carry the new
 * CA first and the previous one while it is valid, so webhook pods still serving the old certificate
 * until they reload stay trusted.
 */
function planWebhookTls(what: string, stored: StoredData, wanted: { commonName: string; sans: string[] }, now: Date, decisions: Decision[]): LeafMaterial {
  const certPem = text(stored, 'tls.crt');
  const keyPem = text(stored, 'tls.key');
  const storedBundle = text(stored, 'ca.crt');
  const issuerPem = safeCertificates(storedBundle)[0];
  let verdict: { due: boolean; reason: string };
  if (certPem === undefined) verdict = { due: true, reason: 'certificate is missing' };
  else if (issuerPem === undefined) verdict = { due: true, reason: 'its CA (ca.crt) is missing or unreadable' };
  else {
    const caVerdict = caRenewalDue(issuerPem, { now });
    verdict = caVerdict.due ? caVerdict : renewalDue(certPem, { now, wantedSans: wanted.sans, issuerPem, keyPem: keyPem ?? '' });
  }
  if (!verdict.due && certPem !== undefined && keyPem !== undefined && issuerPem !== undefined) {
    decisions.push({ object: what, item: 'certificate', action: 'reused', reason: verdict.reason });
    return { certPem, keyPem, caBundlePem: trustBundle(issuerPem, storedBundle, now) };
  }
  decisions.push({ object: what, item: 'certificate', action: certPem === undefined ? 'created' : 'renewed', reason: `${verdict.reason} (new one-time CA)` });
  const ca = createCertificateAuthority({ commonName: WEBHOOK_CA_COMMON_NAME, now });
  const leaf = createServerCertificate({ ca, commonName: wanted.commonName, sans: wanted.sans, now });
  return { ...leaf, caBundlePem: trustBundle(ca.certPem, issuerPem, now) };
}

function planKeystore(
  what: string,
  stored: StoredData,
  leaf: KeyPairPem,
  ca: CaMaterial,
  options: PlanOptions,
  decisions: Decision[],
) {
  const storedPassword = text(stored, KEYSTORE_PASSWORD_KEY);
  const passwordUsable = storedPassword !== undefined && /^[A-Za-z0-9]{16,}$/.test(storedPassword);
  const password = passwordUsable ? storedPassword : options.randomPassword();
  const storedKeystore = bytes(stored, KEYSTORE_KEY);
  const problem = passwordUsable
    ? keystoreProblem(storedKeystore, password, leaf.certPem, leaf.keyPem, ca.certPem)
    : storedPassword === undefined
      ? 'keystore password is missing'
      : 'keystore password is not 16+ alphanumeric characters';
  if (problem === undefined && storedKeystore !== undefined) {
    decisions.push({ object: what, item: 'keystore', action: 'reused', reason: 'opens with the stored password and holds tls.crt/tls.key' });
    return { ...leaf, caBundlePem: ca.bundlePem, keystore: storedKeystore, keystorePassword: password };
  }
  decisions.push({ object: what, item: 'keystore', action: storedKeystore === undefined ? 'created' : 'renewed', reason: problem ?? 'keystore is missing' });
  return { ...leaf, caBundlePem: ca.bundlePem, keystore: toPkcs12(leaf, ca.certPem, password), keystorePassword: password };
}

function planPassword(what: string, stored: StoredData, options: PlanOptions, decisions: Decision[], usedByGreenmail: boolean): string {
  const password = text(stored, 'password');
  if (password !== undefined && password !== '') {
    if (usedByGreenmail && /[\s:@,$'"\\]/.test(password)) {
      throw new Error(
        `${what}: the stored password contains a space or one of : @ , $ ' " \\, which GreenMail's -Dgreenmail.users cannot carry; set an alphanumeric password in it, or delete the Secret to have one generated`,
      );
    }
    decisions.push({ object: what, item: 'password', action: 'reused', reason: 'present (passwords are never regenerated)' });
    return password;
  }
  decisions.push({ object: what, item: 'password', action: 'created', reason: stored === undefined ? 'Secret is missing' : 'password is missing' });
  return options.randomPassword();
}

/** A Secret's `data` (base64 values) as read, or undefined when the Secret does not exist. */
export type StoredData = Record<string, string> | undefined;

export function storedData(obj: KubeObject | undefined): StoredData {
  return obj === undefined ? undefined : { ...((obj['data'] ?? {}) as Record<string, string>) };
}
function text(data: StoredData, key: string): string | undefined {
  const value = data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}
function bytes(data: StoredData, key: string): Buffer | undefined {
  const value = data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64');
}

// ---------------------------------------------------------------------------------------------


/**
 * Stamps the hash of what we want (Secret values blanked: drift in values is caught by comparing them,
 * and the annotation must not be a function of secret material). A changed hash means a field we used to
 * set is gone or renamed, which a plain "is desired a subset of current" check cannot see.
 */
export function withDesiredHash(obj: KubeObject): KubeObject {
  const shape: KubeObject = obj.kind === 'Secret'
    ? { ...obj, data: Object.fromEntries(Object.keys((obj['data'] ?? {}) as object).map((k) => [k, ''])) }
    : obj;
  const annotations = { ...(obj.metadata.annotations ?? {}), [DESIRED_HASH_ANNOTATION]: sha256(canonicalJson(shape)).slice(0, 32) };
  return { ...obj, metadata: { ...obj.metadata, annotations } };
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

