// `demomail dev-certs`: certificates for running the webhook and the mail server on a workstation.
// CAs are never replaced (a developer may already trust one); the serving leaf is re-issued only when
// the renewal rule says so, so re-running the command is cheap and changes nothing when all is valid.
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { commitFiles, discardFiles, stageFile, type StagedFile } from './atomic-file.js';
import { createCertificateAuthority, createServerCertificate, type KeyPairPem } from './certificates.js';
import { caUnusableReason, renewalDue } from './renewal.js';

export const DEV_SERVING_SANS = ['localhost', '127.0.0.1', '::1'];
const PUBLIC_MODE = 0o644;
const SECRET_MODE = 0o600;

export interface DevCertsOptions {
  now?: Date;
}

/** Writes mail-ca.{crt,key}, webhook-ca.{crt,key}, webhook.{crt,key} (localhost, 127.0.0.1, ::1) into dir; never overwrites an existing CA. Returns the paths it wrote (none when everything was valid). */
export async function writeDevCerts(dir: string, opts: DevCertsOptions = {}): Promise<string[]> {
  const now = opts.now ?? new Date();
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const written: string[] = [];

  await ensureCa(root, 'mail-ca', 'demomail mail CA (development)', now, written);
  const webhookCa = await ensureCa(root, 'webhook-ca', 'demomail webhook CA (development)', now, written);

  const leafCrt = join(root, 'webhook.crt');
  const leafKey = join(root, 'webhook.key');
  const current = { cert: await readIfPresent(leafCrt), key: await readIfPresent(leafKey) };
  const decision =
    current.key === undefined
      ? { due: true, reason: 'private key is missing' }
      : renewalDue(current.cert, { now, wantedSans: DEV_SERVING_SANS, issuerPem: webhookCa.certPem, keyPem: current.key });
  if (decision.due) {
    const leaf = createServerCertificate({ ca: webhookCa, commonName: 'localhost', sans: DEV_SERVING_SANS, now });
    await writePair(leafCrt, leafKey, leaf);
    written.push(leafCrt, leafKey);
  }
  return written;
}

async function ensureCa(root: string, base: string, commonName: string, now: Date, written: string[]): Promise<KeyPairPem> {
  const crtPath = join(root, `${base}.crt`);
  const keyPath = join(root, `${base}.key`);
  const certPem = await readIfPresent(crtPath);
  const keyPem = await readIfPresent(keyPath);
  if (certPem === undefined && keyPem === undefined) {
    const ca = createCertificateAuthority({ commonName, now });
    await writePair(crtPath, keyPath, ca);
    written.push(crtPath, keyPath);
    return ca;
  }
  if (certPem === undefined || keyPem === undefined) {
    const [present, absent] = certPem === undefined ? [keyPath, crtPath] : [crtPath, keyPath];
    throw new Error(`${absent} is missing but ${present} exists; restore it, or delete ${present} to create a new CA (clients trusting the old one must then trust the new one)`);
  }
  const problem = caUnusableReason(certPem, { now, keyPem });
  if (problem) {
    throw new Error(`${crtPath}: ${problem}; dev-certs never replaces a CA, delete ${crtPath} and ${keyPath} to create a new one`);
  }
  return { certPem, keyPem };
}

async function writePair(crtPath: string, keyPath: string, pair: KeyPairPem): Promise<void> {
  const staged: StagedFile[] = [];
  try {
    staged.push(await stageFile(keyPath, pair.keyPem, SECRET_MODE));
    staged.push(await stageFile(crtPath, pair.certPem, PUBLIC_MODE));
    await commitFiles(staged);
  } catch (err) {
    await discardFiles(staged);
    throw err;
  }
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
