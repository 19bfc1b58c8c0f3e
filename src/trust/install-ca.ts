// `demomail install-ca`, the injected init container: turns the mail CA from DEMOMAIL_CA_PEM into the
// files every other container reads from the shared in-memory volume. It runs under a restricted
// securityContext with a read-only root filesystem, so it writes only inside `dir` (temporary files
// included) and needs no particular user.
import { X509Certificate, createHash } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { commitFiles, discardFiles, removeStaleTempFiles, stageFile, type StagedFile } from '../pki/atomic-file.js';
import { certificatesInBundle, pemToDer, splitPemCertificates } from '../pki/certificates.js';

export const CA_FILE = 'ca.crt';
export const BUNDLE_FILE = 'ca-bundle.crt';
export const PHP_INI_FILE = join('php', 'zz-demomail.ini');
/** Other containers may run as any UID: the files are public data and must be world-readable. */
const FILE_MODE = 0o644;
const DIR_MODE = 0o755;

export interface InstallCaOptions {
  dir: string;
  caPem: string;
  systemBundlePath: string;
  /** Where to name the CA input in error messages. */
  caSource?: string;
  /** Receives one line per non-fatal problem; default: stderr. */
  warn?: (line: string) => void;
}

/** Writes ca.crt, ca-bundle.crt, php/zz-demomail.ini atomically; returns the written paths (absolute). */
export async function installCa(opts: InstallCaOptions): Promise<string[]> {
  const warn = opts.warn ?? ((line: string) => process.stderr.write(`demomail install-ca: warning: ${line}\n`));
  const source = opts.caSource ?? 'DEMOMAIL_CA_PEM';
  const dir = resolve(opts.dir);

  // Everything is validated and computed before the first byte is written: bad input leaves no file.
  const mailCas = mailCaCertificates(opts.caPem, source);
  for (const problem of mailCaProblems(mailCas)) warn(`${source}: ${problem}`);
  const system = await readSystemBundle(opts.systemBundlePath, warn);
  const files: Array<[string, string]> = [
    [join(dir, CA_FILE), mailCas.join('')],
    [join(dir, BUNDLE_FILE), buildCaBundle(system, mailCas)],
    [join(dir, PHP_INI_FILE), phpIni(dir)],
  ];

  await makeDirectory(dir);
  await makeDirectory(join(dir, 'php'));
  await removeStaleTempFiles(dir);
  await removeStaleTempFiles(join(dir, 'php'));
  const staged: StagedFile[] = [];
  try {
    for (const [path, content] of files) staged.push(await stageFile(path, content, FILE_MODE));
    await commitFiles(staged);
  } catch (err) {
    await discardFiles(staged);
    throw new Error(`cannot write into ${dir}: ${describeFsError(err)}; the directory must be writable by this user (an emptyDir volume)`);
  }
  return files.map(([path]) => path);
}

/**
 * The combined trust bundle: the system roots in their original order, then the mail CA(s) not already
 * among them; duplicates (same DER, by SHA-256) appear once. Comments, blank lines, blocks of other types
 * and damaged blocks of the system bundle are dropped.
 */
export function buildCaBundle(systemPem: string, mailCaPems: string[]): string {
  const seen = new Set<string>();
  const out: string[] = [];
  const mail = mailCaPems.flatMap((pem) => splitPemCertificates(pem));
  for (const pem of [...certificatesInBundle(systemPem, 'system CA bundle').certificates, ...mail]) {
    const digest = createHash('sha256').update(pemToDer(pem)).digest('hex');
    if (seen.has(digest)) continue;
    seen.add(digest);
    out.push(pem);
  }
  return out.join('');
}

/** php/zz-demomail.ini: points PHP's openssl streams and curl extension at the combined bundle. */
export function phpIni(dir: string): string {
  const bundle = join(resolve(dir), BUNDLE_FILE);
  if (/["\r\n\0]/.test(bundle)) {
    throw new Error(`install-ca --dir ${JSON.stringify(dir)}: the path cannot contain quotes or line breaks (it goes into a PHP ini file)`);
  }
  // Unquoted when safe, so the line reads exactly as a person would write it; quoted otherwise, because
  // PHP's ini parser gives meaning to characters such as ";", "=", "$" and "~".
  const value = /^[A-Za-z0-9/._-]+$/.test(bundle) ? bundle : `"${bundle}"`;
  return [
    '; Written by demomail install-ca. PHP reads it when PHP_INI_SCAN_DIR includes this directory',
    '; (pods annotated demomail/php-ini: "true"): TLS from PHP streams and the curl extension then trusts',
    '; the system roots plus the demomail mail CA. "zz-" makes it load after the image\'s own ini files.',
    `openssl.cafile=${value}`,
    `curl.cainfo=${value}`,
    '',
  ].join('\n');
}

/** The mail CA input as normalised CERTIFICATE blocks, duplicates removed; throws on anything else. */
export function mailCaCertificates(caPem: string, source = 'DEMOMAIL_CA_PEM'): string[] {
  if (caPem.trim() === '') {
    throw new Error(`${source} is empty: it must hold the mail CA certificate (PEM)`);
  }
  let pems: string[];
  try {
    pems = splitPemCertificates(caPem);
  } catch (err) {
    throw new Error(`${source}: ${(err as Error).message}`);
  }
  return pems.filter((pem, i) => pems.indexOf(pem) === i);
}

/** Certificates that are accepted but will not do what the user expects. */
export function mailCaProblems(pems: string[], now: Date = new Date()): string[] {
  const problems: string[] = [];
  for (const pem of pems) {
    const cert = new X509Certificate(pem);
    if (!cert.ca) problems.push(`"${cert.subject}" is not a CA certificate; servers whose certificates it signed will not be trusted`);
    if (now.getTime() > Date.parse(cert.validTo)) problems.push(`"${cert.subject}" expired at ${new Date(cert.validTo).toISOString()}`);
  }
  return problems;
}

async function readSystemBundle(path: string, warn: (line: string) => void): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      warn(`system CA bundle ${path} does not exist; ${BUNDLE_FILE} holds only the mail CA, so public TLS sites will not verify with it (set --system-bundle or DEMOMAIL_SYSTEM_CA_BUNDLE)`);
      return '';
    }
    throw new Error(`cannot read system CA bundle ${path}: ${describeFsError(err)}; fix the path (--system-bundle / DEMOMAIL_SYSTEM_CA_BUNDLE) or its permissions`);
  }
  const parsed = certificatesInBundle(text, path);
  for (const problem of parsed.problems) warn(problem);
  if (parsed.certificates.length === 0) warn(`system CA bundle ${path} contains no certificates; ${BUNDLE_FILE} holds only the mail CA`);
  return text;
}

async function makeDirectory(path: string): Promise<void> {
  const fail = (detail: string) => new Error(`cannot create directory ${path}: ${detail}; --dir must be a writable volume (an emptyDir)`);
  try {
    // Non-recursive first: a recursive mkdir reports ENOENT instead of EROFS on a read-only filesystem.
    await mkdir(path, { mode: DIR_MODE });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await stat(path)).isDirectory()) return;
      throw fail('it exists and is not a directory');
    }
    if (code !== 'ENOENT') throw fail(describeFsError(err));
    try {
      await mkdir(path, { recursive: true, mode: DIR_MODE });
    } catch (nested) {
      throw fail(describeFsError(nested));
    }
  }
  // Only a directory we created gets its mode set (the umask may have narrowed it); an existing volume keeps its own.
  await chmod(path, DIR_MODE);
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}${e.path ? ` (${e.path})` : ''}` : String(err);
}
