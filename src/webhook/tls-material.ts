// Reading and validating what the kubelet mounts: the serving certificate + key and the mail CA.
// Validation happens before anything is swapped in, so a half-written or wrong file never replaces
// a working one. Error messages name the file and never quote its content.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';

export const TLS_MIN_VERSION = 'TLSv1.2' as const;
/**
 * TLS 1.2: ECDHE key exchange with AEAD ciphers only (no static-RSA key exchange, no CBC). The TLS 1.3
 * names must be listed too: Node disables TLS 1.3 when `ciphers` names none of its suites.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
/** Passed on every secure context (setSecureContext resets what it is not given). */
export const TLS_OPTIONS = { minVersion: TLS_MIN_VERSION, ciphers: TLS_CIPHERS } as const;

export class MaterialError extends Error {
  override name = 'MaterialError';
}

export interface ServingMaterial {
  certPem: string;
  keyPem: string;
  /** Upper-case hex, as X509Certificate reports it. */
  serialNumber: string;
  fingerprint: string;
  notAfter: Date;
}

export interface CaMaterial {
  /** Only the CERTIFICATE blocks, normalised: this is what pods receive. */
  pem: string;
  fingerprints: string[];
}

/** "sha256:<lower-case hex>" like src/pki's certificateFingerprint, for log lines and metrics. */
export function fingerprintOf(cert: X509Certificate): string {
  return `sha256:${cert.fingerprint256.replaceAll(':', '').toLowerCase()}`;
}

/** Validates a certificate chain + key pair; throws MaterialError naming the files. */
export function servingMaterialFrom(certPem: string, keyPem: string, files: { certFile: string; keyFile: string }): ServingMaterial {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new MaterialError(`serving certificate ${files.certFile} holds no readable PEM certificate`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new MaterialError(`serving key ${files.keyFile} holds no readable unencrypted PEM private key`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new MaterialError(
      `serving key ${files.keyFile} does not belong to certificate ${files.certFile} (serial ${cert.serialNumber}); they must come from the same Secret version`,
    );
  }
  const notAfter = new Date(cert.validTo);
  try {
    // The exact call setSecureContext makes: anything OpenSSL rejects fails here, not mid-swap.
    createSecureContext({ cert: certPem, key: keyPem, ...TLS_OPTIONS });
  } catch (err) {
    throw new MaterialError(`OpenSSL rejects ${files.certFile} with ${files.keyFile}: ${(err as Error).message}`);
  }
  return { certPem, keyPem, serialNumber: cert.serialNumber, fingerprint: fingerprintOf(cert), notAfter };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/**
 * The mail CA goes into every injected pod, so the file may hold CERTIFICATE blocks only: a private
 * key mounted here by mistake must never be copied into pod specs.
 */
export function caMaterialFrom(pem: string, caFile: string): CaMaterial {
  const blocks: string[] = [];
  const fingerprints: string[] = [];
  for (const match of pem.matchAll(PEM_BLOCK)) {
    const type = match[1]!;
    if (type !== 'CERTIFICATE') {
      throw new MaterialError(`CA file ${caFile} contains a "${type}" PEM block; mount only the public ca.crt (CERTIFICATE blocks)`);
    }
    const body = match[2]!.replace(/\s+/g, '');
    const block = `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----\n`;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      throw new MaterialError(`CA file ${caFile}: certificate #${blocks.length + 1} cannot be decoded`);
    }
    if (!cert.ca) {
      throw new MaterialError(`CA file ${caFile}: certificate #${blocks.length + 1} (${cert.subject.replaceAll('\n', ', ')}) is not a CA certificate`);
    }
    blocks.push(block);
    fingerprints.push(fingerprintOf(cert));
  }
  if (blocks.length === 0) {
    throw new MaterialError(`CA file ${caFile} contains no PEM CERTIFICATE block`);
  }
  return { pem: blocks.join(''), fingerprints };
}

/** Reads a mounted file; a missing file is a normal state during start-up, said plainly. */
export async function readMountedFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MaterialError(`${what} ${path} does not exist (yet): is the Secret/ConfigMap mounted?`);
    throw new MaterialError(`cannot read ${what} ${path}: ${code ?? String(err)}`);
  }
}
