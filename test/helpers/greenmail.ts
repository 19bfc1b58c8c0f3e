// tap wrapper around scripts/lib/greenmail.ts: the real GreenMail jar for one test file, stopped in
// t.teardown (its output printed when the file failed). Under CI=true a missing java or Maven FAILS the
// file; elsewhere the file is skipped, saying loudly what is missing.
//
// The launcher maps each `-Dgreenmail.<proto>.port` of the Deployment to a free port, so any number of
// test files may each run their own GreenMail (and gateway, `gatewayFor`) at the same time.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { startGatewayProcess, type GatewayPorts, type RunningGatewayProcess } from '../../scripts/lib/gateway.js';
import { settingsFrom } from '../../src/config.js';
import type { KubeObject } from '../../src/bootstrap/objects.js';
import { desiredObjects, randomAlphanumericPassword } from '../../src/bootstrap/plan.js';
import { startGreenmail, type RawObject, type RunningGreenmail, type StartGreenmailOptions } from '../../scripts/lib/greenmail.js';

export const IN_CI = process.env['CI'] === 'true' || process.env['CI'] === '1';
export const ROOT = join(import.meta.dirname, '..', '..');

function hasTool(name: string, args: string[]): boolean {
  return spawnSync(name, args, { stdio: 'ignore' }).status === 0;
}

/** Fails (CI) or skips (elsewhere) the test with `reason`; returns false so callers can `return`. */
export function unavailable(t: Test, reason: string): false {
  if (IN_CI) {
    t.fail(`CI=true and ${reason}`);
  } else {
    process.stderr.write(`\n*** SKIPPING ${t.name}: ${reason}\n\n`);
    t.skip(reason, () => {});
  }
  return false;
}

/** The jar path (DEMOMAIL_GREENMAIL_JAR, else scripts/greenmail-jar.sh, which downloads once with Maven). */
export function greenmailJar(t: Test): string | undefined {
  if (!hasTool('java', ['-version'])) {
    unavailable(t, 'java is not installed: GreenMail needs a JRE >= 11 (Debian: apt-get install openjdk-17-jre-headless)');
    return undefined;
  }
  const preset = process.env['DEMOMAIL_GREENMAIL_JAR'];
  if (preset && existsSync(preset)) return preset;
  if (!preset && !hasTool('mvn', ['-v'])) {
    unavailable(t, 'mvn is not installed and DEMOMAIL_GREENMAIL_JAR is not set: install Maven or run npm run mailserver:jar elsewhere');
    return undefined;
  }
  const run = spawnSync('bash', [join(ROOT, 'scripts', 'greenmail-jar.sh')], { encoding: 'utf8', timeout: 300_000 });
  const jar = run.stdout.trim().split('\n').pop() ?? '';
  if (run.status !== 0 || !existsSync(jar)) {
    unavailable(t, `scripts/greenmail-jar.sh failed (exit ${run.status}): ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return undefined;
  }
  return jar;
}

/** Starts GreenMail with the Deployment's options; undefined when skipped or failed (already reported). */
export async function greenmailFor(
  t: Test,
  deployment: RawObject,
  secrets: RawObject[],
  extra: Pick<StartGreenmailOptions, 'ports' | 'extraOptions'> = {},
): Promise<RunningGreenmail | undefined> {
  const jar = greenmailJar(t);
  if (jar === undefined) return undefined;
  const lines: string[] = [];
  const greenmail = await startGreenmail({ deployment, secrets, jar, log: (line) => lines.push(line), ...extra });
  t.teardown(async () => {
    if (!t.passing()) process.stderr.write(`\nGreenMail output of failed ${t.name}:\n${lines.slice(-60).join('\n')}\n`);
    await greenmail.stop();
  });
  for (const line of lines.filter((l) => l.startsWith('greenmail launcher:'))) t.comment(line);
  return greenmail;
}

/** Builds dist/ when it is missing or older than src/ (running one file with `npx tap` outside `npm test`). */
export function ensureBuilt(): string {
  const cli = join(ROOT, 'dist', 'src', 'cli.js');
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((max, entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return Math.max(max, newest(path));
      return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? Math.max(max, statSync(path).mtimeMs) : max;
    }, 0);
  const builtAt = existsSync(cli) ? statSync(cli).mtimeMs : 0;
  const mainAt = existsSync(join(ROOT, 'dist', 'src', 'bootstrap', 'main.js')) ? statSync(join(ROOT, 'dist', 'src', 'bootstrap', 'main.js')).mtimeMs : 0;
  if (Math.min(builtAt, mainAt) < newest(join(ROOT, 'src'))) {
    // tsc emits even when files other people are editing have type errors; what we need is the JS.
    spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { stdio: 'ignore', timeout: 300_000 });
  }
  if (!existsSync(cli)) throw new Error('dist/src/cli.js is missing after tsc: run npm run build and fix the errors it prints');
  return cli;
}

/** data of manifests/config.yaml (ConfigMap demomail-config), what the pods get through envFrom. */
export function manifestConfigData(overrides: Record<string, string> = {}): Record<string, string> {
  const doc = parseYaml(readFileSync(join(ROOT, 'manifests', 'config.yaml'), 'utf8')) as { data?: Record<string, unknown> };
  const data: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc.data ?? {})) data[key] = String(value);
  return { ...data, ...overrides };
}

/**
 * `demomail gateway` as container `gateway` of the rendered Deployment runs it, in front of `greenmail`;
 * stopped in t.teardown (its output printed when the test failed).
 */
export async function gatewayFor(
  t: Test,
  deployment: RawObject,
  secrets: RawObject[],
  greenmail: RunningGreenmail,
  options: { configData?: Record<string, string>; ports?: GatewayPorts; extraEnv?: Record<string, string> } = {},
): Promise<RunningGatewayProcess> {
  const lines: string[] = [];
  const gateway = await startGatewayProcess({
    deployment,
    secrets,
    configData: options.configData ?? manifestConfigData(),
    cli: ensureBuilt(),
    greenmail,
    log: (line) => lines.push(line),
    ...(options.ports ? { ports: options.ports } : {}),
    ...(options.extraEnv ? { extraEnv: options.extraEnv } : {}),
  });
  t.teardown(async () => {
    if (!t.passing()) process.stderr.write(`\ngateway output of failed ${t.name}:\n${lines.slice(-60).join('\n')}\n`);
    await gateway.stop();
  });
  for (const line of lines.filter((l) => l.startsWith('gateway launcher:'))) t.comment(line);
  return gateway;
}

/**
 * The mail server as `demomail bootstrap` renders it on an empty cluster (default settings): the
 * Deployment, its Secrets, and the SMTP/IMAP accounts read back from those Secrets.
 */
export function renderedMailserver() {
  const settings = settingsFrom({});
  const plan = desiredObjects(settings, { objects: {}, labelledNamespaces: [] }, { now: new Date(), randomPassword: () => randomAlphanumericPassword() });
  const deployment = plan.objects.find((o) => o.kind === 'Deployment') as KubeObject;
  const secrets = plan.objects.filter((o) => o.kind === 'Secret');
  const secretText = (name: string, key: string) =>
    Buffer.from(((secrets.find((s) => s.metadata.name === name)?.['data'] ?? {}) as Record<string, string>)[key] ?? '', 'base64').toString('utf8');
  const smtp = { user: secretText(settings.names.smtpSecret, 'username'), pass: secretText(settings.names.smtpSecret, 'password') };
  const imap = { user: secretText(settings.names.imapSecret, 'username'), pass: secretText(settings.names.imapSecret, 'password') };
  return { settings, plan, deployment, secrets, secretText, smtp, imap };
}
