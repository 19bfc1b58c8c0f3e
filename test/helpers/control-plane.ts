// tap wrapper around scripts/lib/control-plane.ts: one real control plane per test file.
// Under CI=true missing binaries (or a failing build) FAIL the file; elsewhere it is skipped loudly,
// because a cold build takes minutes and belongs to `npm run e2e:binaries`, not to a test run.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Test } from 'tap';
import { repoRoot, resolveBinDir, startControlPlane, type ControlPlane } from '../../scripts/lib/control-plane.js';

export const IN_CI = process.env['CI'] === 'true' || process.env['CI'] === '1';

/** Says what is missing when a tool the e2e suite shells out to is not installed. */
export function missingTool(name: string, args: string[] = ['version']): string | undefined {
  try {
    execFileSync(name, args, { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${name} is not installed (needed by the e2e control plane)`;
  }
}

/**
 * Starts a control plane for this test file and stops it in t.teardown, printing the component logs
 * first when the file failed. Returns undefined when the file was skipped (outside CI only).
 */
export async function controlPlaneFor(t: Test, options: { controllerManager?: boolean } = {}): Promise<ControlPlane | undefined> {
  const toolProblem = missingTool('openssl');
  const resolved = toolProblem === undefined ? await resolveBinDir({ build: IN_CI }) : { reason: toolProblem, binDir: undefined };
  if (resolved.binDir === undefined) {
    const reason = resolved.reason ?? 'control-plane binaries not available';
    if (IN_CI) {
      t.fail(`CI=true and the e2e control plane cannot run: ${reason}`);
      return undefined;
    }
    process.stderr.write(`\n*** SKIPPING ${t.name}: ${reason}\n\n`);
    t.plan(0, `e2e control plane unavailable: ${reason}`);
    return undefined;
  }
  const plane = await startControlPlane({
    binDir: resolved.binDir,
    controllerManager: options.controllerManager,
    log: (line) => t.comment(line),
  });
  t.teardown(async () => {
    if (!t.passing()) {
      process.stderr.write(`\ncontrol-plane logs of failed ${t.name}:\n${plane.logTail(60)}\n`);
    }
    await plane.stop();
  });
  return plane;
}

/**
 * The e2e suite runs the built CLI (dist/), as the image does. A test run started with `npx tap FILE`
 * may find dist/ older than src/: rebuild then (tsc emits even when someone else's file has a type
 * error, so only a missing output fails).
 */
export function ensureBuilt(): void {
  const root = repoRoot();
  const stale = sourceFiles(join(root, 'src')).some((ts) => {
    const js = join(root, 'dist', relative(root, ts)).replace(/\.ts$/, '.js');
    return !existsSync(js) || statSync(js).mtimeMs < statSync(ts).mtimeMs;
  });
  if (!stale) return;
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'pipe' });
  } catch (err) {
    process.stderr.write(`tsc reported errors while rebuilding dist/ (continuing with what it emitted):\n${String((err as { stdout?: Buffer }).stdout ?? '')}\n`);
  }
  if (!existsSync(join(root, 'dist', 'src', 'cli.js'))) throw new Error('dist/src/cli.js is missing after tsc: run `npm run build` and fix its errors');
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}
