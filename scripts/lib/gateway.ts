// Runs `demomail gateway` locally EXACTLY as container `gateway` of a rendered demomail-mailserver
// Deployment: env resolved as the kubelet does (envFrom the demomail-config data with prefix
// DEMOMAIL_, then env with secretKeyRef from the rendered Secrets), the container's args, each Secret
// volume written to a private temp directory standing in for its mountPath.
//
// Deliberate differences, each logged: mount paths → the temp directory; listen on 127.0.0.1 and free
// ports instead of 0.0.0.0:2525/2587/2465/8025; GreenMail's SMTP/API ports → those of the local
// GreenMail (scripts/lib/greenmail.ts remaps them too). They are appended as later options, which
// win over the container's own.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { containerEnvironment } from '../../src/bootstrap/greenmail.js';
import { freePort, LOOPBACK, redact, type RawObject, type SecretFile } from './greenmail.js';

export interface GatewayPorts {
  smtp: number;
  submission: number;
  smtps: number;
  http: number;
}

interface Container {
  name: string;
  args?: string[];
  command?: string[];
  envFrom?: { configMapRef?: { name: string }; prefix?: string }[];
  env?: { name: string; value?: string; valueFrom?: Record<string, { name: string; key: string; optional?: boolean }> }[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: { key: string; path: string }[]; optional?: boolean };
}

export interface GatewayCommandLine {
  /** Arguments after `demomail` (the image's entrypoint). */
  args: string[];
  env: Record<string, string>;
  secretValues: string[];
  files: SecretFile[];
  notes: string[];
}

/** Pure: the command line and env of container `gateway`, mounts under `mountRoot`, ports as given. */
export function gatewayCommandLine(
  deployment: RawObject,
  secrets: RawObject[],
  configData: Record<string, string>,
  mountRoot: string,
  local: { ports: GatewayPorts; greenmailSmtpPort: number; greenmailApiPort: number },
): GatewayCommandLine {
  const podSpec = ((deployment['spec'] as RawObject | undefined)?.['template'] as RawObject | undefined)?.['spec'] as { containers?: Container[]; volumes?: Volume[] } | undefined;
  const container = podSpec?.containers?.find((c) => c.name === 'gateway');
  if (!container) throw new Error(`Deployment ${deployment.metadata?.name ?? '?'} has no container "gateway"; pass the rendered demomail-mailserver Deployment`);
  if (container.command && container.command.length > 0) throw new Error(`container gateway: command ${JSON.stringify(container.command)} overrides the image entrypoint (demomail); this launcher runs only the entrypoint`);
  const secretData: Record<string, Record<string, string>> = {};
  for (const s of secrets) if (s.kind === 'Secret' && s.metadata?.name) secretData[s.metadata.name] = (s['data'] ?? {}) as Record<string, string>;

  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (!source.configMapRef) throw new Error('container gateway: envFrom other than configMapRef is not supported here');
    for (const [key, value] of Object.entries(configData)) env[`${source.prefix ?? ''}${key}`] = value;
  }
  Object.assign(env, containerEnvironment(container.env ?? [], { secrets: secretData }, 'container gateway'));
  const secretValues = (container.env ?? []).filter((e) => e.valueFrom?.['secretKeyRef']).map((e) => env[e.name]).filter((v): v is string => Boolean(v));

  const notes: string[] = [];
  const files: SecretFile[] = [];
  const mounts = new Map<string, string>();
  for (const mount of container.volumeMounts ?? []) {
    const volume = podSpec?.volumes?.find((v) => v.name === mount.name);
    if (!volume?.secret) continue;
    const local = join(mountRoot, volume.name);
    mounts.set(mount.mountPath.replace(/\/$/, ''), local);
    notes.push(`mount ${mount.mountPath} (Secret ${volume.secret.secretName}) → ${local}`);
    const data = secretData[volume.secret.secretName];
    if (!data) {
      if (volume.secret.optional) continue; // an optional Secret that does not exist: an empty directory
      throw new Error(`volume ${volume.name} mounts Secret ${volume.secret.secretName}, which was not passed in \`secrets\``);
    }
    for (const item of volume.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }))) {
      const value = data[item.key];
      if (value === undefined) throw new Error(`volume ${volume.name}: Secret ${volume.secret.secretName} has no key "${item.key}"`);
      files.push({ path: join(local, item.path), content: Buffer.from(value, 'base64') });
    }
  }
  const args = (container.args ?? []).map((arg) => {
    for (const [mountPath, localDir] of mounts) {
      if (arg === mountPath) return localDir;
      if (arg.startsWith(`${mountPath}/`)) return `${localDir}${arg.slice(mountPath.length)}`;
    }
    return arg;
  });
  const overrides = [
    '--host', LOOPBACK,
    '--smtp-port', String(local.ports.smtp),
    '--submission-port', String(local.ports.submission),
    '--smtps-port', String(local.ports.smtps),
    '--http-port', String(local.ports.http),
    '--greenmail-smtp-port', String(local.greenmailSmtpPort),
    '--greenmail-api-port', String(local.greenmailApiPort),
  ];
  notes.push(`appended ${overrides.join(' ')} (loopback, free ports, the local GreenMail)`);
  return { args: [...args, ...overrides], env, secretValues, files, notes };
}

export interface StartGatewayProcessOptions {
  deployment: RawObject;
  secrets: RawObject[];
  /** demomail-config data (manifests/config.yaml, with a test's overrides). */
  configData: Record<string, string>;
  /** dist/src/cli.js */
  cli: string;
  greenmail: { ports: { smtp: number; api: number } };
  log?: (line: string) => void;
  /** Ports to reuse (a restart); free ones otherwise. */
  ports?: GatewayPorts;
  /** Extra env for the process (e.g. DEMOMAIL_LOG_LEVEL). */
  extraEnv?: Record<string, string>;
  /** Node flags before the script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses): benchmarks only. */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
}

export interface RunningGatewayProcess {
  ports: GatewayPorts;
  pid: number;
  child: ChildProcess;
  /** Directory standing in for the TLS Secret mount (tests swap certificates there). */
  mountRoot: string;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/**
 * Free ports are probed, released, then bound by the child a moment later: another process (a
 * parallel test file) can take one in between. With ports of our own choosing, such a collision is
 * retried on new ports; ports the caller asked for are never changed.
 */
export async function startGatewayProcess(opts: StartGatewayProcessOptions): Promise<RunningGatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGatewayProcessOnce(opts);
    } catch (err) {
      if (opts.ports !== undefined || attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
      opts.log?.(`gateway launcher: a free port was taken meanwhile (attempt ${attempt}); retrying on new ports`);
    }
  }
}

async function startGatewayProcessOnce(opts: StartGatewayProcessOptions): Promise<RunningGatewayProcess> {
  const log = opts.log ?? (() => {});
  const root = await mkdtemp(join(tmpdir(), 'demomail-gateway-'));
  await chmod(root, 0o700);
  const ports = opts.ports ?? { smtp: await freePort(), submission: await freePort(), smtps: await freePort(), http: await freePort() };
  const line = gatewayCommandLine(opts.deployment, opts.secrets, opts.configData, join(root, 'mounts'), { ports, greenmailSmtpPort: opts.greenmail.ports.smtp, greenmailApiPort: opts.greenmail.ports.api });
  for (const file of line.files) {
    await mkdir(dirname(file.path), { recursive: true, mode: 0o700 });
    await writeFile(file.path, file.content, { mode: 0o400 });
  }
  for (const note of line.notes) log(`gateway launcher: ${note}`);
  log(`gateway launcher: demomail ${redact(line.args, line.secretValues).join(' ')}`);
  const output: string[] = [];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.cli, ...line.args], {
    env: { PATH: process.env['PATH'] ?? '', ...line.env, ...(opts.extraEnv ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (text: string) => {
    const safe = redact([text], line.secretValues)[0] as string;
    output.push(safe);
    if (output.length > 400) output.shift();
    log(safe);
  };
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream, crlfDelay: Infinity }).on('line', collect);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(root, { recursive: true, force: true });
  };
  const failed = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`demomail gateway exited (${signal ?? `code ${code}`}) before it listened:\n${output.slice(-30).join('\n')}`)));
  });
  failed.catch(() => {});
  try {
    await Promise.race([waitListening(ports.http, opts.readyTimeoutMs ?? 30_000), failed]);
  } catch (err) {
    await stop();
    throw err;
  }
  log(`gateway launcher: listening (smtp ${ports.smtp}, submission ${ports.submission}, smtps ${ports.smtps}, http ${ports.http})`);
  return { ports, pid: child.pid ?? -1, child, mountRoot: join(root, 'mounts'), logTail: (n = 40) => output.slice(-n).join('\n'), stop };
}

/** /readyz 200 (certificate loaded, GreenMail ready). */
async function waitListening(httpPort: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://${LOOPBACK}:${httpPort}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `HTTP ${res.status}: ${await res.text()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`demomail gateway was not ready within ${timeoutMs / 1000}s (GET /readyz: ${last})`);
}
