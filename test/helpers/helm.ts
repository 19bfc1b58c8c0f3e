// The real `helm` v3 for the chart tests: $HELM, else scripts/helm.sh (builds it once per version from Go
// modules, cached like the control plane). Under CI=true a missing helm FAILS the file (CI builds it in
// .ci/run); elsewhere the file is skipped loudly, because a cold build takes minutes.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { parseAllDocuments } from 'yaml';
import { lastLines, repoRoot } from '../../scripts/lib/control-plane.js';
import { IN_CI } from './control-plane.js';

export const CHART = join(repoRoot(), 'charts', 'demomail');

export interface HelmRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export type Helm = (args: readonly string[], options?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }) => Promise<HelmRun>;

/** The versions the tests run: Helm 3 (what the seed platform uses) and Helm 4 (server-side apply). */
export const HELM_VERSIONS = ['v3.22.0', 'v4.3.1'] as const;

/**
 * The helm binary's path (scripts/helm.sh, which honours HELM / HELM4), or undefined after failing (CI)
 * or skipping (elsewhere) the test `t`, which must not have asserted anything yet.
 */
export function helmBinary(t: Test, version: string = HELM_VERSIONS[0]): string | undefined {
  const args = [join(repoRoot(), 'scripts', 'helm.sh'), ...(IN_CI ? [] : ['--check'])];
  const run = spawnSync('bash', args, { encoding: 'utf8', timeout: 900_000, env: { ...process.env, DEMOMAIL_HELM_VERSION: version } });
  const bin = run.stdout.trim().split('\n').pop() ?? '';
  if (run.status === 0 && existsSync(bin)) return bin;
  const reason = `helm ${version} is not available (scripts/helm.sh exited ${run.status}): ${lastLines(run.stderr.trim(), 3)}; run \`DEMOMAIL_HELM_VERSION=${version} npm run helm:binary\` or set ${version.startsWith('v3') ? 'HELM' : 'HELM4'}`;
  if (IN_CI) {
    t.fail(`CI=true and ${reason}`);
  } else {
    process.stderr.write(`\n*** SKIPPING ${t.name}: ${reason}\n\n`);
    t.plan(0, reason);
  }
  return undefined;
}

/**
 * helm with its own empty home (no repositories, no plugins, no cache of the user's), so a developer's
 * helm setup cannot change a result.
 */
export function helmRunner(bin: string, home: string, kubeconfig?: string): Helm {
  const base: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: home,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
  };
  return (args, options = {}) =>
    new Promise((resolve) => {
      execFile(bin, args, { env: { ...base, ...options.env }, timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; killed?: boolean }) | null;
        const code = e ? (typeof e.code === 'number' ? e.code : e.killed ? null : 1) : 0;
        resolve({ code, stdout, stderr: e && typeof e.code === 'string' ? `${stderr}${e.message}` : stderr });
      });
    });
}

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } } & Record<string, unknown>;

/** Every document of a multi-document YAML stream that is an object (comments and empty documents dropped). */
export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`invalid YAML: ${d.errors[0]?.message}`);
      return d.toJSON() as unknown;
    })
    .filter((o): o is K8sObject => typeof o === 'object' && o !== null && 'kind' in o);
}

export const objectKey = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** Labels the chart adds for Helm's bookkeeping and nothing else (templates/_helpers.tpl "demomail.helmLabels"). */
export const HELM_LABELS = ['helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/instance', 'app.kubernetes.io/version'];

/** The object without Helm's own labels and annotations (helm.sh/*), empty maps removed. */
export function withoutHelmMetadata(o: K8sObject): K8sObject {
  const copy = structuredClone(o);
  const labels = Object.fromEntries(Object.entries(copy.metadata.labels ?? {}).filter(([k]) => !HELM_LABELS.includes(k)));
  const annotations = Object.fromEntries(Object.entries(copy.metadata.annotations ?? {}).filter(([k]) => !k.startsWith('helm.sh/')));
  delete copy.metadata.labels;
  delete copy.metadata.annotations;
  if (Object.keys(labels).length > 0) copy.metadata.labels = labels;
  if (Object.keys(annotations).length > 0) copy.metadata.annotations = annotations;
  return copy;
}
