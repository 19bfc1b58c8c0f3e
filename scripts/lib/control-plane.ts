// A real, throwaway Kubernetes control plane on loopback: etcd + kube-apiserver + kube-controller-manager,
// driven by the binaries scripts/control-plane.sh builds (or KUBEBUILDER_ASSETS). Used by the e2e tests
// (through test/helpers/control-plane.ts), the pod-create benchmark and the demo script.
//
// Decisions:
// - The PKI is made with the `openssl` CLI: the API server needs client certificates (admin with
//   O=system:masters, the controller manager's identity), which src/pki deliberately does not build.
//   EC P-256 keys: a whole PKI takes a few milliseconds.
// - etcd speaks plain HTTP on 127.0.0.1 (a test fixture on loopback; TLS there would only cost start time)
//   and runs with --unsafe-no-fsync.
// - Every process gets its own process group; stop() signals the group, waits, then SIGKILLs, and removes
//   the temp dir. A process 'exit' hook kills whatever is left if the caller never reached stop().
import { httpsGet } from './wait.js';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const;

/**
 * Controllers the e2e suite needs: Deployments → ReplicaSets → Pods, the `default` ServiceAccount and
 * `kube-root-ca.crt` in every namespace, Jobs/CronJobs (the bootstrap), garbage collection and namespace
 * deletion. Names as kube-controller-manager 1.36 spells them (`--help` lists them).
 */
export const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'root-ca-certificate-publisher-controller',
  'job-controller',
  'cronjob-controller',
  'ttl-after-finished-controller',
] as const;

export interface ControlPlaneOptions {
  /** Directory holding the four binaries (the last line printed by scripts/control-plane.sh). */
  binDir: string;
  /** Progress lines (not the component logs, which go to files in the temp dir). */
  log?: (line: string) => void;
  /** Bound on the whole start-up, /readyz included. */
  readyTimeoutMs?: number;
  /** Start kube-controller-manager too (default true). */
  controllerManager?: boolean;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when killed by the timeout. */
  code: number | null;
}

export interface KubectlOptions {
  input?: string;
  timeoutMs?: number;
}

export interface ControlPlane {
  /** Temp dir holding certs, kubeconfigs, etcd data and the component logs. */
  dir: string;
  binDir: string;
  /** https://127.0.0.1:PORT */
  server: string;
  kubeconfigPath: string;
  /** CA of the API server's serving cert and of its client certificates. */
  caPem: string;
  adminCertPem: string;
  adminKeyPem: string;
  /**
   * kubectl as admin, synchronous (simple sequential scripts and tests; the webhook under test is
   * another process, so blocking this one is harmless). Never throws: look at `code`.
   */
  kubectl(args: readonly string[], options?: KubectlOptions): KubectlResult;
  /** The same without blocking the event loop (parallel work, benchmarks). */
  kubectlAsync(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** kubectl that throws (with stderr and the command) unless it exits 0; returns stdout. */
  kubectlOk(args: readonly string[], options?: KubectlOptions): string;
  /** kubectl ... -o json, parsed. */
  kubectlJson<T = Record<string, unknown>>(args: readonly string[], options?: KubectlOptions): T;
  /** A kubeconfig (text) for this API server authenticating with a bearer token (e.g. `kubectl create token`). */
  kubeconfigFor(token: string, user?: string): string;
  /** Waits until the namespace's ServiceAccount exists (pods are refused before the `default` SA is made). */
  waitForServiceAccount(namespace: string, name?: string, timeoutMs?: number): Promise<void>;
  /** The last lines of every component log, headed by the file name. */
  logTail(lines?: number): string;
  /**
   * SIGKILLs kube-apiserver's process group (no graceful shutdown: a crash, as the fault tests want) and
   * waits for its exit. etcd and kube-controller-manager keep running. No-op when it is not running.
   */
  killApiServer(): Promise<void>;
  /**
   * Starts kube-apiserver again with the same flags, certificates, port and etcd (after killApiServer)
   * and waits for /readyz; resolves with the seconds that took. Throws when it exits or is not ready
   * within `timeoutMs` (default 120 s).
   */
  restartApiServer(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export class ControlPlaneError extends Error {
  override name = 'ControlPlaneError';
}

// ---------------------------------------------------------------------------------------------------
// Pure parts: flags and file contents.

export interface Layout {
  dir: string;
  etcdClientPort: number;
  etcdPeerPort: number;
  apiserverPort: number;
}

export function etcdArgs(l: Layout): string[] {
  const client = `http://127.0.0.1:${l.etcdClientPort}`;
  const peer = `http://127.0.0.1:${l.etcdPeerPort}`;
  return [
    '--name=default',
    `--data-dir=${join(l.dir, 'etcd-data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`,
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

export function apiserverArgs(l: Layout): string[] {
  const f = (name: string) => join(l.dir, name);
  return [
    `--etcd-servers=http://127.0.0.1:${l.etcdClientPort}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${l.apiserverPort}`,
    // Loopback only: without these the apiserver looks for a routable address and maintains the
    // `kubernetes` Endpoints for one.
    '--advertise-address=127.0.0.1',
    '--endpoint-reconciler-type=none',
    `--cert-dir=${f('apiserver-certs')}`,
    `--tls-cert-file=${f('apiserver.crt')}`,
    `--tls-private-key-file=${f('apiserver.key')}`,
    `--client-ca-file=${f('ca.crt')}`,
    '--authorization-mode=Node,RBAC',
    // One key both signs and verifies service-account tokens (TokenRequest needs the signing key).
    `--service-account-key-file=${f('sa.key')}`,
    `--service-account-signing-key-file=${f('sa.key')}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    '--service-cluster-ip-range=10.96.0.0/16',
    // Default admission plugins stay on: MutatingAdmissionWebhook and PodSecurity are what we test.
    '--profiling=false',
  ];
}

export function controllerManagerArgs(l: Layout): string[] {
  const f = (name: string) => join(l.dir, name);
  return [
    `--kubeconfig=${f('controller-manager.kubeconfig')}`,
    `--controllers=${CONTROLLERS.join(',')}`,
    '--secure-port=0',
    '--leader-elect=false',
    // Each controller acts under its own ServiceAccount, as in a real cluster (RBAC is exercised).
    '--use-service-account-credentials',
    `--service-account-private-key-file=${f('sa.key')}`,
    `--root-ca-file=${f('ca.crt')}`,
  ];
}

export type KubeconfigInput = { server: string; caPem: string; user: string } & (
  | { certPem: string; keyPem: string; token?: undefined }
  | { token: string; certPem?: undefined; keyPem?: undefined }
);

/** A kubeconfig with embedded credentials (JSON is valid YAML, and needs no YAML writer). */
export function kubeconfigText(k: KubeconfigInput): string {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const credentials =
    k.token !== undefined ? { token: k.token } : { 'client-certificate-data': b64(k.certPem), 'client-key-data': b64(k.keyPem) };
  return `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'demomail-e2e', cluster: { server: k.server, 'certificate-authority-data': b64(k.caPem) } }],
      users: [{ name: k.user, user: credentials }],
      contexts: [{ name: 'demomail-e2e', context: { cluster: 'demomail-e2e', user: k.user } }],
      'current-context': 'demomail-e2e',
    },
    null,
    2,
  )}\n`;
}

/** The last `lines` lines of a text, for failure reports. */
export function lastLines(text: string, lines: number): string {
  const all = text.replace(/\n$/, '').split('\n');
  return all.slice(Math.max(0, all.length - lines)).join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Binary directory: scripts/control-plane.sh (builds once per version, honours KUBEBUILDER_ASSETS).

/** The repository root, found from this module's location (works from scripts/lib and dist/scripts/lib). */
export function repoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scripts', 'control-plane.sh'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new ControlPlaneError(`cannot find the demomail repository root above ${from}`);
    dir = parent;
  }
}

export interface BinDirResult {
  /** Directory with the four binaries, when available. */
  binDir?: string;
  /** Why not, in words a person can act on. */
  reason?: string;
}

/**
 * Runs scripts/control-plane.sh. `build: false` only checks (`--check`): a cold build takes minutes, so a
 * developer's test run skips instead, while CI builds.
 */
export function resolveBinDir(options: { build: boolean; env?: NodeJS.ProcessEnv } = { build: true }): Promise<BinDirResult> {
  const script = join(repoRoot(), 'scripts', 'control-plane.sh');
  const args = options.build ? [script] : [script, '--check'];
  return new Promise((resolve) => {
    execFile('bash', args, { env: options.env ?? process.env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (!err && last !== '') {
        const missing = BINARIES.filter((b) => !existsSync(join(last, b)));
        if (missing.length === 0) return resolve({ binDir: last });
        return resolve({ reason: `${script} printed ${last}, which lacks ${missing.join(', ')}` });
      }
      resolve({
        reason:
          `control-plane binaries not available (${script}${options.build ? '' : ' --check'} exited ${(err as { code?: number } | null)?.code ?? '?'}): ` +
          `${lastLines(stderr.trim(), 5)}\n` +
          'run `npm run e2e:binaries` (a cold build takes 5-25 minutes) or set KUBEBUILDER_ASSETS to a directory with etcd, kube-apiserver, kube-controller-manager and kubectl',
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// I/O edges.

/** Distinct free loopback ports, all held open until every one is chosen (no duplicates among them). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === 'string') throw new ControlPlaneError('listen(0) returned no port');
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function run(cmd: string, args: readonly string[], options: { cwd?: string; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: options.cwd, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; killed?: boolean }) | null;
        let code: number | null = 0;
        if (e) code = typeof e.code === 'number' ? e.code : e.killed ? null : 1;
        resolve({ stdout, stderr: e && typeof e.code === 'string' ? `${stderr}${e.message}` : stderr, code });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

const OPENSSL_CONFIG = '[req]\ndistinguished_name = dn\n[dn]\n';

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  const r = await run('openssl', ['req', '-x509', '-config', 'openssl.cnf', ...args], { cwd: dir });
  if (r.code !== 0) throw new ControlPlaneError(`openssl req ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '7'];

/** One CA for serving and client certs; apiserver serving cert; admin and controller-manager client certs. */
async function writePki(dir: string): Promise<void> {
  await writeFile(join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
  await openssl(dir, [
    ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=demomail-e2e-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const leaf = (name: string, subject: string, extra: string[]) =>
    openssl(dir, [
      '-CA', 'ca.crt', '-CAkey', 'ca.key', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', subject,
      '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature', ...extra,
    ]);
  await Promise.all([
    leaf('apiserver', '/CN=kube-apiserver', [
      '-addext', 'extendedKeyUsage=serverAuth',
      '-addext', 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
    ]),
    leaf('admin', '/O=system:masters/CN=demomail-e2e-admin', ['-addext', 'extendedKeyUsage=clientAuth']),
    leaf('controller-manager', '/CN=system:kube-controller-manager', ['-addext', 'extendedKeyUsage=clientAuth']),
  ]);
  // SEC1 ("EC PRIVATE KEY"): --service-account-key-file reads public keys out of it, and rejects PKCS#8.
  const sa = await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key'], { cwd: dir });
  if (sa.code !== 0) throw new ControlPlaneError(`openssl genpkey (service-account key) failed: ${sa.stderr.trim()}`);
}

interface Component {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
}

const live = new Set<Component>();
let exitHookInstalled = false;

function killGroup(c: Component, signal: NodeJS.Signals): void {
  if (c.child.pid === undefined || c.exitCode !== undefined) return;
  try {
    process.kill(-c.child.pid, signal);
  } catch {
    // Already gone: nothing to kill.
  }
}

function startComponent(dir: string, binDir: string, name: string, args: string[]): Component {
  const logFile = join(dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(join(binDir, name), args, { cwd: dir, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  const component: Component = { name, child, logFile, exitCode: undefined, exited: Promise.resolve(null) };
  component.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      component.exitCode = code ?? (signal ? -1 : null);
      live.delete(component);
      resolve(component.exitCode);
    });
    child.once('error', (err) => {
      component.exitCode = -1;
      live.delete(component);
      void writeFile(logFile, `spawn failed: ${err.message}\n`, { flag: 'a' });
      resolve(-1);
    });
  });
  live.add(component);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort when a test crashed before its teardown: no stray apiservers left behind.
    process.once('exit', () => {
      for (const c of live) killGroup(c, 'SIGKILL');
    });
  }
  return component;
}

async function stopComponent(c: Component, graceMs = 5000): Promise<void> {
  if (c.exitCode !== undefined) return;
  killGroup(c, 'SIGTERM');
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([c.exited, timer])) === 'timeout') {
    killGroup(c, 'SIGKILL');
    await c.exited;
  }
}


const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function tailOf(c: Component, lines: number): string {
  let text = '';
  try {
    text = readFileSync(c.logFile, 'utf8');
  } catch {
    text = '(no log file)';
  }
  return `--- ${c.name} (${c.logFile}, last ${lines} lines) ---\n${lastLines(text, lines)}`;
}

/** Polls /readyz until 200; throws when `dead()` names an exited component or the deadline passes. */
async function waitReady(server: string, caPem: string, certPem: string, keyPem: string, deadline: number, dead: () => Component | undefined): Promise<void> {
  let lastProblem = 'no answer yet';
  for (;;) {
    const gone = dead();
    if (gone) throw new ControlPlaneError(`${gone.name} exited with ${gone.exitCode} during start-up`);
    try {
      const r = await httpsGet({ url: `${server}/readyz`, caPem, certPem, keyPem });
      if (r.status === 200) return;
      lastProblem = `/readyz ${r.status}: ${lastLines(r.body.trim(), 3)}`;
    } catch (err) {
      lastProblem = (err as Error).message;
    }
    if (Date.now() > deadline) throw new ControlPlaneError(`kube-apiserver not ready within the timeout (${lastProblem})`);
    await sleep(250);
  }
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const log = options.log ?? (() => undefined);
  const binDir = options.binDir;
  const missing = BINARIES.filter((b) => !existsSync(join(binDir, b)));
  if (missing.length > 0) {
    throw new ControlPlaneError(`${binDir} lacks ${missing.join(', ')}: run scripts/control-plane.sh (npm run e2e:binaries) or fix KUBEBUILDER_ASSETS`);
  }
  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  const dir = await mkdtemp(join(tmpdir(), 'demomail-cp-'));
  const components: Component[] = [];
  let stopped = false;

  const logTail = (lines = 40) => components.map((c) => tailOf(c, lines)).join('\n');
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Reverse order: controllers first, storage last.
    for (const c of [...components].reverse()) await stopComponent(c);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await writePki(dir);
    const [etcdClientPort, etcdPeerPort, apiserverPort] = (await freePorts(3)) as [number, number, number];
    const layout: Layout = { dir, etcdClientPort, etcdPeerPort, apiserverPort };
    const server = `https://127.0.0.1:${apiserverPort}`;
    const caPem = await readFile(join(dir, 'ca.crt'), 'utf8');
    const adminCertPem = await readFile(join(dir, 'admin.crt'), 'utf8');
    const adminKeyPem = await readFile(join(dir, 'admin.key'), 'utf8');
    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigText({ server, caPem, certPem: adminCertPem, keyPem: adminKeyPem, user: 'admin' }), { mode: 0o600 });
    await writeFile(
      join(dir, 'controller-manager.kubeconfig'),
      kubeconfigText({
        server,
        caPem,
        certPem: await readFile(join(dir, 'controller-manager.crt'), 'utf8'),
        keyPem: await readFile(join(dir, 'controller-manager.key'), 'utf8'),
        user: 'system:kube-controller-manager',
      }),
      { mode: 0o600 },
    );

    log(`control plane in ${dir}: etcd :${etcdClientPort}, kube-apiserver ${server}`);
    components.push(startComponent(dir, binDir, 'etcd', etcdArgs(layout)));
    components.push(startComponent(dir, binDir, 'kube-apiserver', apiserverArgs(layout)));

    const started = Date.now();
    await waitReady(server, caPem, adminCertPem, adminKeyPem, deadline, () => components.find((c) => c.exitCode !== undefined));
    log(`kube-apiserver ready after ${((Date.now() - started) / 1000).toFixed(1)}s`);

    const apiserverIndex = components.findIndex((c) => c.name === 'kube-apiserver');
    const killApiServer = async () => {
      const c = components[apiserverIndex]!;
      killGroup(c, 'SIGKILL');
      await c.exited;
    };
    const restartApiServer = async (timeoutMs = 120_000) => {
      if (stopped) throw new ControlPlaneError('restartApiServer after stop()');
      const old = components[apiserverIndex]!;
      if (old.exitCode === undefined) throw new ControlPlaneError('kube-apiserver is still running: killApiServer() first');
      const begun = Date.now();
      const c = startComponent(dir, binDir, 'kube-apiserver', apiserverArgs(layout));
      components[apiserverIndex] = c;
      await waitReady(server, caPem, adminCertPem, adminKeyPem, begun + timeoutMs, () => (c.exitCode !== undefined ? c : undefined));
      return (Date.now() - begun) / 1000;
    };

    if (options.controllerManager !== false) {
      components.push(startComponent(dir, binDir, 'kube-controller-manager', controllerManagerArgs(layout)));
    }

    const kubectlBin = join(binDir, 'kubectl');
    const kubectlEnv = { ...process.env, KUBECONFIG: kubeconfigPath };
    const kubectlAsync = (args: readonly string[], o: KubectlOptions = {}) =>
      run(kubectlBin, ['--kubeconfig', kubeconfigPath, ...args], { input: o.input, timeoutMs: o.timeoutMs, env: kubectlEnv });
    const kubectl = (args: readonly string[], o: KubectlOptions = {}): KubectlResult => {
      const r = spawnSync(kubectlBin, ['--kubeconfig', kubeconfigPath, ...args], {
        input: o.input ?? '',
        timeout: o.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
        env: kubectlEnv,
      });
      const error = r.error ? `${r.error.message}\n` : '';
      return { stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${error}`, code: r.status };
    };
    const kubectlOk = (args: readonly string[], o: KubectlOptions = {}) => {
      const r = kubectl(args, o);
      if (r.code !== 0) throw new ControlPlaneError(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
      return r.stdout;
    };
    const kubectlJson = <T>(args: readonly string[], o: KubectlOptions = {}) => JSON.parse(kubectlOk([...args, '-o', 'json'], o)) as T;
    const kubeconfigFor = (token: string, user = 'token-user') => kubeconfigText({ server, caPem, token, user });
    const waitForServiceAccount = async (namespace: string, name = 'default', timeoutMs = 60_000) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const r = await kubectlAsync(['get', 'serviceaccount', name, '-n', namespace, '-o', 'name']);
        if (r.code === 0) return;
        if (Date.now() > until) {
          throw new ControlPlaneError(`ServiceAccount ${namespace}/${name} did not appear within ${timeoutMs} ms (is kube-controller-manager's serviceaccount-controller running?): ${r.stderr.trim()}`);
        }
        await sleep(200);
      }
    };

    return {
      dir,
      binDir,
      server,
      kubeconfigPath,
      caPem,
      adminCertPem,
      adminKeyPem,
      kubectl,
      kubectlAsync,
      kubectlOk,
      kubectlJson,
      kubeconfigFor,
      waitForServiceAccount,
      logTail,
      killApiServer,
      restartApiServer,
      stop,
    };
  } catch (err) {
    const tail = logTail(30);
    await stop();
    throw new ControlPlaneError(`${(err as Error).message}\n${tail}`);
  }
}
