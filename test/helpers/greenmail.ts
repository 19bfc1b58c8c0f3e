// tap wrapper around scripts/lib/greenmail.ts: the real GreenMail jar for one test file, stopped in
// t.teardown (its output printed when the file failed). Under CI=true a missing java or Maven FAILS the
// file; elsewhere the file is skipped, saying loudly what is missing.
//
// GreenMail's ports are fixed (-Dgreenmail.setup.test.all: 3025, 3465, 3143, 3993, 3110, 3995, 8080;
// it has no port offset), so only ONE test file may use this helper: test/integration/mail.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { startGreenmail, type RawObject, type RunningGreenmail } from '../../scripts/lib/greenmail.js';

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
export async function greenmailFor(t: Test, deployment: RawObject, secrets: RawObject[]): Promise<RunningGreenmail | undefined> {
  const jar = greenmailJar(t);
  if (jar === undefined) return undefined;
  const lines: string[] = [];
  const greenmail = await startGreenmail({ deployment, secrets, jar, log: (line) => lines.push(line) });
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
