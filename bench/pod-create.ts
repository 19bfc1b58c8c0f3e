// Pod-create benchmark (not a test): what the webhook adds to `POST /api/v1/namespaces/NS/pods` on a real
// kube-apiserver. Opted-in and plain pods (the same realistic CiviCRM pod, with and without the label)
// are created alternately on one keep-alive connection, so both series see the same API server, etcd and
// machine state; the ratio of the two is the figure that matters, not the absolute milliseconds.
//
//   npm run bench:pod-create
//   BENCH_PODS=50 BENCH_SECONDS=120 npm run bench:pod-create
//
// Needs the control-plane binaries (npm run e2e:binaries, or KUBEBUILDER_ASSETS).
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { repoRoot, resolveBinDir, startControlPlane, type ControlPlane } from '../scripts/lib/control-plane.js';
import { routeWebhookTo, startLocalWebhook, waitForWebhookInEffect, type LocalWebhook } from '../scripts/lib/local-webhook.js';
import { civicrmPod } from './fixtures.js';

const PODS = boundedInt('BENCH_PODS', 30, 5, 500);
const SECONDS = boundedInt('BENCH_SECONDS', 60, 5, 600);
const WARMUP = 3;
const NAMESPACE = 'bench';

function boundedInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name}=${raw} must be an integer ${min}-${max}`);
  return value;
}

/** Nearest-rank percentile of already sorted samples. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

function createPod(plane: ControlPlane, agent: Agent, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(
      `${plane.server}/api/v1/namespaces/${NAMESPACE}/pods`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const elapsed = performance.now() - started;
          if (res.statusCode === 201) return resolve(elapsed);
          reject(new Error(`POST pod answered ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 500)}`));
        });
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error('POST pod timed out after 15 s')));
    req.on('error', reject);
    req.end(body);
  });
}

function podBody(index: number, optIn: boolean): string {
  const pod = civicrmPod({ name: `${optIn ? 'opted' : 'plain'}-${index}`, namespace: NAMESPACE, optIn });
  return JSON.stringify(pod);
}

function summary(label: string, samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  console.log(`${label.padEnd(8)} n=${String(samples.length).padStart(3)}  p50 ${p50.toFixed(2).padStart(7)} ms  p99 ${p99.toFixed(2).padStart(7)} ms  mean ${mean.toFixed(2).padStart(7)} ms`);
  return { p50, p99 };
}

async function main(): Promise<void> {
  const { binDir, reason } = await resolveBinDir({ build: true });
  if (!binDir) throw new Error(reason);
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const plane = await startControlPlane({ binDir, log: (l) => console.error(l) });
    cleanups.unshift(() => plane.stop());
    const webhook: LocalWebhook = await startLocalWebhook({ env: { DEMOMAIL_LOG_LEVEL: 'warn' } });
    cleanups.unshift(() => webhook.stop());
    plane.kubectlOk(['apply', '-k', join(repoRoot(), 'manifests')]);
    await routeWebhookTo(plane, webhook);
    plane.kubectlOk(['create', 'namespace', NAMESPACE]);
    await plane.waitForServiceAccount(NAMESPACE);
    // The fixture pod runs as ServiceAccount "civicrm" (the ServiceAccount admission plugin checks it exists).
    plane.kubectlOk(['create', 'serviceaccount', 'civicrm', '-n', NAMESPACE]);
    await waitForWebhookInEffect(plane, NAMESPACE);

    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: plane.caPem, cert: plane.adminCertPem, key: plane.adminKeyPem });
    cleanups.unshift(async () => agent.destroy());
    for (let i = 0; i < WARMUP; i++) {
      await createPod(plane, agent, podBody(10_000 + i, true));
      await createPod(plane, agent, podBody(10_000 + i, false));
    }
    const opted: number[] = [];
    const plain: number[] = [];
    const deadline = performance.now() + SECONDS * 1000;
    for (let i = 0; i < PODS && performance.now() < deadline; i++) {
      // Alternate which goes first, so neither series always follows the other.
      const order = i % 2 === 0 ? [true, false] : [false, true];
      for (const optIn of order) (optIn ? opted : plain).push(await createPod(plane, agent, podBody(i, optIn)));
    }
    const injected = plane.kubectlJson<{ items: { metadata: { annotations?: Record<string, string> } }[] }>(['get', 'pods', '-n', NAMESPACE, '-l', 'demomail/inject=true']).items;
    if (!injected.every((p) => p.metadata.annotations?.['demomail/status'])) throw new Error('an opted-in pod was stored without injection: the measurement is void');

    console.log(`\npod create through kube-apiserver (${binDir}), ${opted.length} + ${plain.length} pods, alternating, one keep-alive connection`);
    const o = summary('opted-in', opted);
    const p = summary('plain', plain);
    console.log(`ratio opted/plain: p50 ${(o.p50 / p.p50).toFixed(2)}x  p99 ${(o.p99 / p.p99).toFixed(2)}x  (webhook added ~${(o.p50 - p.p50).toFixed(2)} ms at p50)`);
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((err: unknown) => console.error(`cleanup: ${String(err)}`));
  }
}

await main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
