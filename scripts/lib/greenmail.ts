// Runs the real GreenMail standalone jar locally with EXACTLY the java options of a rendered
// demomail-mailserver Deployment: the container's env is resolved as the kubelet resolves it
// (secretKeyRef from the rendered Secrets, `$(VAR)` expansion in declaration order), the command is
// word-split as the container's shell splits it, and each Secret volume is written to a private temp
// directory that stands in for its mountPath.
//
// Deliberate differences from the pod, each logged: the mount paths are remapped to that temp
// directory; every `-Dgreenmail.<proto>.hostname=0.0.0.0` becomes 127.0.0.1 (servers started by tests
// and the demo listen on loopback only); every `-Dgreenmail.<proto>.port=N` becomes a free port (or the
// one the caller asks for), so several test files, the demo and the benchmark can each run their own
// GreenMail at the same time.
import { createInterface } from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, chmod, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  CONTAINER_COMMAND,
  ENV,
  READINESS_PATH,
  containerEnvironment,
  shellWords,
} from '../../src/bootstrap/greenmail.js';

/** Raw JSON objects as rendered by desiredObjects or read with kubectl (`any`-free, loosely typed). */
export interface RawObject {
  kind?: string;
  metadata?: { name?: string };
  [field: string]: unknown;
}

export interface StartGreenmailOptions {
  /** The Deployment demomail-mailserver (rendered or live). */
  deployment: RawObject;
  /** Secrets it refers to (rendered or live), as a list; others are ignored. */
  secrets: RawObject[];
  /** Path of greenmail-standalone.jar (scripts/greenmail-jar.sh prints it). */
  jar: string;
  /** Receives GreenMail's output and the launcher's notes, one line at a time. */
  log?: (line: string) => void;
  /** How long to wait for GET /api/service/readiness; default 60 s. */
  readyTimeoutMs?: number;
  java?: string;
  /** Ports to use instead of free ones (a restart on the same ports), by protocol. */
  ports?: Partial<Record<string, number>>;
  /** Options appended after the Deployment's (the benchmark's extra SMTPS listener); ports remapped too. */
  extraOptions?: string[];
}

/** Local port of each protocol the options start (smtp, imap, imaps, api; + what extraOptions add). */
export interface GreenmailPorts {
  smtp: number;
  imap: number;
  imaps: number;
  api: number;
  [protocol: string]: number;
}

export interface RunningGreenmail {
  host: '127.0.0.1';
  ports: GreenmailPorts;
  /** The java process (benchmarks read its CPU time from /proc). */
  pid: number;
  /** The java arguments with every secret value replaced by "***". */
  redactedArgs: string[];
  /** The last lines GreenMail printed. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export const LOOPBACK = '127.0.0.1';

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, { name: string; key: string; optional?: boolean }> }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: { key: string; path: string; mode?: number }[]; defaultMode?: number };
  emptyDir?: unknown;
}

export interface SecretFile {
  path: string;
  content: Buffer;
}

export interface CommandLine {
  /** java arguments (without "java"), mount paths already remapped. */
  args: string[];
  /** Values to mask when printing the arguments. */
  secretValues: string[];
  /** Files to create (absolute paths under the mount root). */
  files: SecretFile[];
  ports: GreenmailPorts;
  notes: string[];
}

/**
 * The java command line the pod would run, for a local run with every mount moved under `mountRoot`.
 * Pure (no I/O): the integration test compares it with the Deployment.
 */
export function greenmailCommandLine(
  deployment: RawObject,
  secrets: RawObject[],
  jar: string,
  mountRoot: string,
  localPorts: (protocol: string, podPort: number) => number = (_p, podPort) => podPort,
  extraOptions: string[] = [],
): CommandLine {
  const podSpec = (((deployment['spec'] as RawObject | undefined)?.['template'] as RawObject | undefined)?.['spec'] ?? undefined) as
    | { containers?: Container[]; volumes?: Volume[] }
    | undefined;
  const container = podSpec?.containers?.find((c) => c.name === 'greenmail') ?? podSpec?.containers?.[0];
  if (!container) throw new Error(`Deployment ${deployment.metadata?.name ?? '?'}: spec.template.spec.containers is empty; pass the rendered demomail-mailserver Deployment`);

  const secretData: Record<string, Record<string, string>> = {};
  for (const s of secrets) {
    if (s.kind === 'Secret' && s.metadata?.name) secretData[s.metadata.name] = (s['data'] ?? {}) as Record<string, string>;
  }
  const env = containerEnvironment(container.env ?? [], { secrets: secretData }, `container ${container.name}`);
  const secretValues = (container.env ?? []).filter((e) => e.valueFrom?.['secretKeyRef']).map((e) => env[e.name]).filter((v): v is string => Boolean(v));

  // What the container runs: our explicit `sh -c 'exec java …'`, or the image's run_greenmail.sh.
  const command = [...(container.command ?? []), ...(container.args ?? [])];
  const known = JSON.stringify(command) === JSON.stringify(CONTAINER_COMMAND) || command.length === 0;
  if (!known) {
    throw new Error(`container ${container.name}: command ${JSON.stringify(command)} is not the one this launcher knows (${JSON.stringify(CONTAINER_COMMAND)} or the image default)`);
  }
  const extra = command.length === 0 ? shellWords(env['GREENMAIL_ADDITIONAL_OPTS']) : [];
  let options = [...shellWords(env[ENV.javaOpts]), ...shellWords(env[ENV.greenmailOpts]), ...extra, ...extraOptions];

  const notes: string[] = [];
  const files: SecretFile[] = [];
  const mounts = new Map<string, string>();
  for (const mount of container.volumeMounts ?? []) {
    const volume = podSpec?.volumes?.find((v) => v.name === mount.name);
    if (!volume?.secret) continue;
    const data = secretData[volume.secret.secretName];
    if (!data) throw new Error(`volume ${volume.name} mounts Secret ${volume.secret.secretName}, which was not passed in \`secrets\``);
    const local = join(mountRoot, volume.name);
    mounts.set(mount.mountPath.replace(/\/$/, ''), local);
    const items = volume.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const item of items) {
      const value = data[item.key];
      if (value === undefined) throw new Error(`volume ${volume.name}: Secret ${volume.secret.secretName} has no key "${item.key}"`);
      files.push({ path: join(local, item.path), content: Buffer.from(value, 'base64') });
    }
    notes.push(`mount ${mount.mountPath} (Secret ${volume.secret.secretName}) → ${local}`);
  }
  options = options.map((opt) => {
    for (const [mountPath, local] of mounts) {
      const at = opt.indexOf(`=${mountPath}/`);
      if (at !== -1) return `${opt.slice(0, at + 1)}${local}${opt.slice(at + 1 + mountPath.length)}`;
    }
    return opt;
  });
  if (options.some((o) => o.startsWith('-Dgreenmail.setup.'))) {
    throw new Error('the options use -Dgreenmail.setup.*; this launcher (and GreenMail 2.1.7 beside per-protocol options) needs -Dgreenmail.<proto>.hostname/port for each protocol');
  }
  const ports: Record<string, number> = {};
  options = options.map((opt) => {
    const host = /^-Dgreenmail\.([a-z0-9]+)\.hostname=(.*)$/.exec(opt);
    if (host) {
      const [, proto, value] = host;
      if (value === LOOPBACK) return opt;
      if (value !== '0.0.0.0') throw new Error(`${opt}: local runs bind 127.0.0.1 only; the Deployment must bind 0.0.0.0 or 127.0.0.1`);
      notes.push(`-Dgreenmail.${proto}.hostname=0.0.0.0 → ${LOOPBACK} (local servers bind loopback only)`);
      return `-Dgreenmail.${proto}.hostname=${LOOPBACK}`;
    }
    const port = /^-Dgreenmail\.([a-z0-9]+)\.port=(\d+)$/.exec(opt);
    if (port) {
      const proto = port[1] as string;
      const local = localPorts(proto, Number(port[2]));
      ports[proto] = local;
      if (local !== Number(port[2])) notes.push(`-Dgreenmail.${proto}.port=${port[2]} → ${local}`);
      return `-Dgreenmail.${proto}.port=${local}`;
    }
    return opt;
  });
  for (const proto of ['smtp', 'imap', 'imaps', 'api']) {
    if (ports[proto] === undefined) throw new Error(`the options lack -Dgreenmail.${proto}.port; this launcher needs every listener set per protocol`);
    if (!options.includes(`-Dgreenmail.${proto}.hostname=${LOOPBACK}`)) throw new Error(`the options lack -Dgreenmail.${proto}.hostname (0.0.0.0 or 127.0.0.1)`);
  }
  return { args: [...options, '-jar', jar], secretValues, files, ports: ports as GreenmailPorts, notes };
}

export function redact(args: string[], secretValues: string[]): string[] {
  const values = [...new Set(secretValues)].sort((a, b) => b.length - a.length);
  return args.map((arg) => values.reduce((text, value) => text.split(value).join('***'), arg));
}

/** A port the kernel just handed out on 127.0.0.1 (free now; GreenMail binds it a moment later). */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Rejects with a clear message when a port is taken (a port the caller asked for). */
async function assertPortFree(port: number, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`${what} port ${LOOPBACK}:${port} is in use (${err.code}); stop what holds it`)));
    server.listen(port, LOOPBACK, () => server.close(() => resolve()));
  });
}

/**
 * Free ports are probed, released, then bound by the JVM a moment later: another process (a parallel
 * test file) can take one in between. With ports of our own choosing, such a collision is retried on
 * new ports; ports the caller asked for are never changed.
 */
export async function startGreenmail(opts: StartGreenmailOptions): Promise<RunningGreenmail> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGreenmailOnce(opts);
    } catch (err) {
      if (opts.ports !== undefined || attempt >= 3 || !/Address already in use|BindException|EADDRINUSE/.test((err as Error).message)) throw err;
      opts.log?.(`greenmail launcher: a free port was taken meanwhile (attempt ${attempt}); retrying on new ports`);
    }
  }
}

async function startGreenmailOnce(opts: StartGreenmailOptions): Promise<RunningGreenmail> {
  const log = opts.log ?? (() => {});
  const root = await mkdtemp(join(tmpdir(), 'demomail-greenmail-'));
  let child: ChildProcess | undefined;
  const output: string[] = [];
  const cleanup = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child?.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(root, { recursive: true, force: true });
  };
  try {
    await chmod(root, 0o700);
    // Free ports first (async), then the pure command line maps each protocol to one.
    const chosen: Record<string, number> = {};
    for (const proto of ['smtp', 'imap', 'imaps', 'api', 'smtps', 'pop3', 'pop3s']) chosen[proto] = opts.ports?.[proto] ?? (await freePort());
    const line = greenmailCommandLine(opts.deployment, opts.secrets, opts.jar, join(root, 'mounts'), (proto) => chosen[proto] ?? 0, opts.extraOptions ?? []);
    for (const file of line.files) {
      await mkdir(dirname(file.path), { recursive: true, mode: 0o700 });
      await writeFile(file.path, file.content, { mode: 0o400 });
    }
    for (const note of line.notes) log(`greenmail launcher: ${note}`);
    for (const [name, port] of Object.entries(opts.ports ?? {})) if (port !== undefined) await assertPortFree(port, name);
    const redactedArgs = redact(line.args, line.secretValues);
    log(`greenmail launcher: java ${redactedArgs.join(' ')}`);

    child = spawn(opts.java ?? 'java', line.args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    // Whole lines, not chunks: a secret split across two pipe reads would escape redaction.
    const collect = (text: string) => {
      if (text.trim() === '') return;
      const safe = redact([text], line.secretValues)[0] as string;
      output.push(safe);
      if (output.length > 400) output.shift();
      log(safe);
    };
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', collect);
    }
    const spawned = child;
    const failed = new Promise<never>((_, reject) => {
      spawned.once('error', (err) => reject(new Error(`cannot run java: ${err.message}; install a JRE >= 11 (Debian: openjdk-17-jre-headless)`)));
      spawned.once('exit', (code, signal) => reject(new Error(`GreenMail exited (${signal ?? `code ${code}`}) before it was ready:\n${output.slice(-30).join('\n')}`)));
    });
    failed.catch(() => {});
    await Promise.race([waitReady(line.ports.api, opts.readyTimeoutMs ?? 60_000, () => output.slice(-30).join('\n')), failed]);
    log(`greenmail launcher: ready (GET http://${LOOPBACK}:${line.ports.api}${READINESS_PATH})`);
    return {
      host: LOOPBACK,
      ports: line.ports,
      pid: spawned.pid ?? -1,
      redactedArgs,
      logTail: (lines = 40) => output.slice(-lines).join('\n'),
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function waitReady(apiPort: number, timeoutMs: number, tail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://${LOOPBACK}:${apiPort}${READINESS_PATH}`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`GreenMail was not ready within ${timeoutMs / 1000}s (GET ${READINESS_PATH}: ${last}):\n${tail()}`);
}
