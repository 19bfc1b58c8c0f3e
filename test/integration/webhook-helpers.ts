// Shared by the webhook integration tests: real certificates (src/pki), a kubelet-style mounted
// volume, a real HTTPS server on 127.0.0.1:0 and a client that opens a fresh TLS connection per call.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { settingsFrom } from '../../src/config.js';
import { createCertificateAuthority, createServerCertificate, type KeyPairPem } from '../../src/pki/certificates.js';
import { createWebhookServer, type WebhookServer, type WebhookServerOptions } from '../../src/webhook/server.js';

export interface TestPki {
  webhookCa: KeyPairPem;
  serving: KeyPairPem;
  mailCa: KeyPairPem;
}

let cachedPki: TestPki | undefined;
export function testPki(): TestPki {
  if (!cachedPki) {
    const webhookCa = createCertificateAuthority({ commonName: 'demomail webhook test CA' });
    cachedPki = {
      webhookCa,
      serving: servingCert(webhookCa),
      mailCa: createCertificateAuthority({ commonName: 'demomail mail test CA' }),
    };
  }
  return cachedPki;
}

export function servingCert(ca: KeyPairPem): KeyPairPem {
  return createServerCertificate({ ca, commonName: 'demomail-webhook', sans: ['localhost', '127.0.0.1', 'demomail-webhook.demomail.svc'] });
}

export function serialOf(certPem: string): string {
  return new X509Certificate(certPem).serialNumber;
}

/**
 * A directory laid out like a kubelet Secret volume: `..TIMESTAMP/` holds the files, `..data` points
 * to it, and each visible file is a symlink through `..data`. `update` swaps atomically the same way.
 */
export class KubeletVolume {
  private generation = 0;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  update(files: Record<string, string>): void {
    this.generation += 1;
    const stamp = `..2024_01_01_00_00_${String(this.generation).padStart(2, '0')}.${process.pid}`;
    const target = join(this.dir, stamp);
    mkdirSync(target);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(target, name), content);
    const tmp = join(this.dir, '..data_tmp');
    rmSync(tmp, { force: true });
    symlinkSync(stamp, tmp);
    renameSync(tmp, join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      try {
        symlinkSync(join('..data', name), join(this.dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    for (const entry of readdirSync(this.dir)) {
      if (entry.startsWith('..2') && entry !== stamp) rmSync(join(this.dir, entry), { recursive: true, force: true });
    }
  }
}

export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'demomail-webhook-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Collects JSON log lines in memory so tests can assert on what was (and was not) logged. */
export class LogCapture extends Writable {
  readonly chunks: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk.toString('utf8'));
    done();
  }
  get text(): string {
    return this.chunks.join('');
  }
  lines(): Array<Record<string, unknown>> {
    return this.text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

export interface Started {
  server: WebhookServer;
  port: number;
  logs: LogCapture;
  tls: KubeletVolume;
  caVolume: KubeletVolume;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Mounts the test PKI kubelet-style and starts the webhook on 127.0.0.1:0; torn down with the test. */
export async function startWebhook(
  t: Teardown,
  options: { withCa?: boolean; withServing?: boolean; pki?: TestPki; server?: Partial<WebhookServerOptions> } = {},
): Promise<Started> {
  const pki = options.pki ?? testPki();
  const root = tempDir(t);
  const tls = new KubeletVolume(join(root, 'tls'));
  if (options.withServing ?? true) tls.update({ 'tls.crt': pki.serving.certPem, 'tls.key': pki.serving.keyPem, 'ca.crt': pki.webhookCa.certPem });
  const caVolume = new KubeletVolume(join(root, 'mail-ca'));
  if (options.withCa ?? true) caVolume.update({ 'ca.crt': pki.mailCa.certPem });
  const logs = new LogCapture();
  const server = await createWebhookServer({
    certFile: tls.path('tls.crt'),
    keyFile: tls.path('tls.key'),
    caFile: caVolume.path('ca.crt'),
    settings: settingsFrom({}),
    logger: pino({ level: 'debug' }, logs),
    debounceMs: 50,
    pollMs: 60_000,
    defaultMetrics: false,
    ...options.server,
  });
  t.teardown(() => server.app.close());
  const address = await server.listen({ port: 0, host: '127.0.0.1' });
  return { server, port: address.port, logs, tls, caVolume };
}

export interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): Record<string, unknown>;
  peerSerial: string;
}

/** One request over a fresh TLS connection (agent: false: no keep-alive, no session resumption). */
export function httpsCall(
  port: number,
  options: {
    method?: string;
    path?: string;
    body?: string | Buffer;
    contentType?: string;
    ca?: string;
    headers?: Record<string, string>;
    /** Skip certificate verification, as the kubelet's probes do. */
    insecure?: boolean;
  } = {},
): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const body = options.body;
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? (body === undefined ? 'GET' : 'POST'),
        path: options.path ?? '/mutate',
        ca: options.ca ?? testPki().webhookCa.certPem,
        servername: 'localhost',
        rejectUnauthorized: !options.insecure,
        agent: false,
        headers: {
          ...(body !== undefined ? { 'content-type': options.contentType ?? 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}),
          ...options.headers,
        },
        timeout: 10_000,
      },
      (res) => {
        const peer = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            json: () => JSON.parse(text) as Record<string, unknown>,
            peerSerial: peer?.serialNumber ?? '',
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

export function postReview(port: number, review: unknown): Promise<HttpsResult> {
  return httpsCall(port, { body: JSON.stringify(review) });
}

// ---------------------------------------------------------------------------------------------
// `demomail webhook` as a child process (dist/src/cli.js; rebuilt when dist is older than src).

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function ensureBuilt(): void {
  const builtAt = existsSync(join(ROOT, 'dist', 'src', 'webhook', 'server.js')) ? statSync(join(ROOT, 'dist', 'src', 'webhook', 'server.js')).mtimeMs : 0;
  const cliAt = existsSync(CLI) ? statSync(CLI).mtimeMs : 0;
  if (Math.min(builtAt, cliAt) >= newestMtime(join(ROOT, 'src'))) return;
  // tsc emits even when files other people are editing have type errors; what we need is the JS.
  spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore', timeout: 240_000 });
  if (!existsSync(join(ROOT, 'dist', 'src', 'webhook', 'server.js'))) throw new Error('build failed: run npm run build');
}

export interface WebhookProcess {
  child: ChildProcess;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

/** Starts the webhook on 127.0.0.1:0 with the shared test PKI mounted kubelet-style; killed in teardown. */
export async function startWebhookProcess(t: { teardown(fn: () => void): void }, env: Record<string, string>): Promise<WebhookProcess> {
  ensureBuilt();
  const pki = testPki();
  const root = tempDir(t);
  const tls = new KubeletVolume(join(root, 'tls'));
  tls.update({ 'tls.crt': pki.serving.certPem, 'tls.key': pki.serving.keyPem, 'ca.crt': pki.webhookCa.certPem });
  const caVolume = new KubeletVolume(join(root, 'ca'));
  caVolume.update({ 'ca.crt': pki.mailCa.certPem });
  const child = spawn(
    process.execPath,
    [CLI, 'webhook', '--cert', tls.path('tls.crt'), '--key', tls.path('tls.key'), '--ca-file', caVolume.path('ca.crt'), '--port', '0', '--host', '127.0.0.1'],
    { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webhook did not start within 20 s; stderr: ${stderr}`)), 20_000);
    const check = (): void => {
      const match = /"port":(\d+)[^\n]*"msg":"webhook listening"/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', check);
    void exited.then(({ code }) => reject(new Error(`webhook exited with ${code} before listening; stderr: ${stderr}`)));
  });
  return { child, port, exited, stdout: () => stdout, stderr: () => stderr };
}
