// `demomail bootstrap` (or another CLI command) as the Job runs it: its own process, its own env
// (DEMOMAIL_* settings only from `env`), a kubeconfig carrying the ServiceAccount's token.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, type ControlPlane } from '../../scripts/lib/control-plane.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

export async function runCli(cli: string, command: string, kubeconfig: string, env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliRun> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DEMOMAIL_') && k !== 'KUBECONFIG'));
  const started = performance.now();
  const child = spawn(process.execPath, [cli, command, '--kubeconfig', kubeconfig], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr, seconds: (performance.now() - started) / 1000 };
}

export interface InstalledBase {
  /** Temp dir removed in teardown. */
  dir: string;
  /** kubeconfig carrying a one-hour token of the bootstrap ServiceAccount. */
  kubeconfig: string;
  token: string;
}

/** `kubectl apply -k manifests/`, namespace `shop` labelled for copies, and the bootstrap SA's kubeconfig. */
export function installBase(t: { teardown(fn: () => void): void }, plane: ControlPlane, namespace: string, serviceAccount: string): InstalledBase {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  plane.kubectlOk(['apply', '-k', join(repoRoot(), 'manifests')]);
  plane.kubectlOk(['create', 'namespace', 'shop']);
  plane.kubectlOk(['label', 'namespace', 'shop', 'demomail/injection=enabled']);
  const token = plane.kubectlOk(['create', 'token', serviceAccount, '-n', namespace, '--duration', '1h']).trim();
  const kubeconfig = join(dir, 'bootstrap.kubeconfig');
  writeFileSync(kubeconfig, plane.kubeconfigFor(token, serviceAccount), { mode: 0o600 });
  return { dir, kubeconfig, token };
}
