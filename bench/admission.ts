// Admission benchmark (not a test): our webhook vs a bare fastify HTTPS server that answers a canned
// AdmissionReview, same TLS setup, same realistic CiviCRM pod, loaded alternately with autocannon
// (in a worker thread, so the load generator does not share the servers' event loop).
//
//   npm run bench:admission
//   BENCH_ROUNDS=3 BENCH_SECONDS=5 BENCH_CONNECTIONS=10 npm run bench:admission
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon, { type Result } from 'autocannon';
import Fastify from 'fastify';
import { pino } from 'pino';
import { settingsFrom } from '../src/config.js';
import { createCertificateAuthority, createServerCertificate } from '../src/pki/certificates.js';
import { BODY_LIMIT, createWebhookServer } from '../src/webhook/server.js';
import { TLS_MIN_VERSION } from '../src/webhook/tls-material.js';
import { admissionReview, civicrmPod } from './fixtures.js';

const ROUNDS = boundedInt('BENCH_ROUNDS', 3, 1, 10);
const SECONDS = boundedInt('BENCH_SECONDS', 5, 1, 30);
const CONNECTIONS = boundedInt('BENCH_CONNECTIONS', 10, 1, 100);

function boundedInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name}=${raw} must be an integer ${min}-${max}`);
  return value;
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

interface Memory {
  rss: number;
  heapUsed: number;
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-bench-'));
  const webhookCa = createCertificateAuthority({ commonName: 'bench webhook CA' });
  const serving = createServerCertificate({ ca: webhookCa, commonName: 'demomail-webhook', sans: ['localhost', '127.0.0.1'] });
  const mailCa = createCertificateAuthority({ commonName: 'bench mail CA' });
  writeFileSync(join(dir, 'tls.crt'), serving.certPem);
  writeFileSync(join(dir, 'tls.key'), serving.keyPem);
  writeFileSync(join(dir, 'ca.crt'), mailCa.certPem);

  // Logs go to /dev/null through the same async pino destination production uses: their cost counts.
  const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }));
  const ours = await createWebhookServer({
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
    caFile: join(dir, 'ca.crt'),
    settings: settingsFrom({}),
    logger,
  });
  const oursAddress = await ours.listen({ port: 0, host: '127.0.0.1' });

  const review = admissionReview(civicrmPod(), { uid: 'bench-[<id>]' });
  const body = JSON.stringify(review);

  // Check the webhook really injects this pod before timing it, and build the baseline's canned
  // answer from that real response, so both servers send the same bytes back.
  const probe = await ours.app.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload: body });
  const probeJson = probe.json() as { response?: { patchType?: string; patch?: string } };
  if (probe.statusCode !== 200 || probeJson.response?.patchType !== 'JSONPatch') {
    throw new Error(`the webhook did not inject the benchmark pod: ${probe.statusCode} ${probe.body.slice(0, 300)}`);
  }
  const canned = probe.body;

  const baseline = Fastify({
    https: { cert: serving.certPem, key: serving.keyPem, minVersion: TLS_MIN_VERSION },
    bodyLimit: BODY_LIMIT,
    logger: false,
  });
  baseline.post('/mutate', async (_request, reply) => {
    reply.header('content-type', 'application/json; charset=utf-8');
    return canned;
  });
  await baseline.listen({ port: 0, host: '127.0.0.1' });
  const baselinePort = (baseline.server.address() as { port: number }).port;

  const targets = {
    baseline: `https://127.0.0.1:${baselinePort}/mutate`,
    webhook: `https://127.0.0.1:${oursAddress.port}/mutate`,
  } as const;
  type Target = keyof typeof targets;

  const run = (target: Target, seconds: number): Promise<Result> =>
    autocannon({
      url: targets[target],
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      idReplacement: true,
      connections: CONNECTIONS,
      duration: seconds,
      workers: 1,
      servername: 'localhost',
      tlsOptions: { ca: webhookCa.certPem, servername: 'localhost' },
    });

  const peak: Record<Target, Memory> = { baseline: { rss: 0, heapUsed: 0 }, webhook: { rss: 0, heapUsed: 0 } };
  const sampleMemory = (target: Target): NodeJS.Timeout =>
    setInterval(() => {
      const { rss, heapUsed } = process.memoryUsage();
      peak[target].rss = Math.max(peak[target].rss, rss);
      peak[target].heapUsed = Math.max(peak[target].heapUsed, heapUsed);
    }, 100);

  const startMemory = process.memoryUsage();
  console.log(`demomail admission benchmark — Node ${process.version}, ${ROUNDS} rounds x ${SECONDS} s per server, ${CONNECTIONS} keep-alive TLS connections`);
  console.log(`AdmissionReview: ${(Buffer.byteLength(body) / 1024).toFixed(1)} KiB (pod with ${((review['request'] as { object: { spec: { containers: { env: unknown[] }[] } } }).object.spec.containers[0]!.env.length)} env vars per container); response ${(Buffer.byteLength(canned) / 1024).toFixed(1)} KiB`);
  console.log('warm-up: 1 s each');
  await run('baseline', 1);
  await run('webhook', 1);

  const samples: Record<Target, Sample[]> = { baseline: [], webhook: [] };
  for (let round = 1; round <= ROUNDS; round += 1) {
    // Alternate the order so drift (thermal, GC, a background job) does not favour one side.
    const order: Target[] = round % 2 ? ['baseline', 'webhook'] : ['webhook', 'baseline'];
    for (const target of order) {
      const timer = sampleMemory(target);
      const result = await run(target, SECONDS);
      clearInterval(timer);
      const sample = { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts, non2xx: result.non2xx };
      samples[target].push(sample);
      console.log(
        `round ${round} ${target.padEnd(8)} ${sample.rps.toFixed(0).padStart(7)} req/s  p50 ${sample.p50.toFixed(2).padStart(6)} ms  p99 ${sample.p99.toFixed(2).padStart(6)} ms  errors ${sample.errors}  non-2xx ${sample.non2xx}`,
      );
    }
  }

  const summary = (target: Target) => ({
    rps: median(samples[target].map((s) => s.rps)),
    p50: median(samples[target].map((s) => s.p50)),
    p99: median(samples[target].map((s) => s.p99)),
    failures: samples[target].reduce((n, s) => n + s.errors + s.non2xx, 0),
  });
  const base = summary('baseline');
  const mine = summary('webhook');
  console.log('\nmedian over rounds     req/s     p50 ms    p99 ms   failed');
  for (const [name, s] of [['baseline', base], ['webhook', mine]] as const) {
    console.log(`${name.padEnd(20)} ${s.rps.toFixed(0).padStart(8)} ${s.p50.toFixed(2).padStart(10)} ${s.p99.toFixed(2).padStart(9)} ${String(s.failures).padStart(8)}`);
  }
  console.log(
    `ratio webhook/baseline  req/s ${(mine.rps / base.rps).toFixed(2)}  p50 ${(mine.p50 / Math.max(base.p50, 0.001)).toFixed(2)}  p99 ${(mine.p99 / Math.max(base.p99, 0.001)).toFixed(2)}`,
  );
  console.log(
    `memory (one process: both servers; autocannon runs in a worker thread): start rss ${mib(startMemory.rss)} heap ${mib(startMemory.heapUsed)}; ` +
      `peak while loading baseline rss ${mib(peak.baseline.rss)} heap ${mib(peak.baseline.heapUsed)}; ` +
      `peak while loading webhook rss ${mib(peak.webhook.rss)} heap ${mib(peak.webhook.heapUsed)}`,
  );
  const metrics = await ours.metrics.registry.getSingleMetricAsString('demomail_webhook_injected_total');
  console.log(`webhook counted ${metrics.split('\n').find((l) => l.startsWith('demomail_webhook_injected_total ')) ?? '?'}`);

  await baseline.close();
  await ours.app.close();
  rmSync(dir, { recursive: true, force: true });
  if (base.failures + mine.failures > 0) {
    console.error('some requests failed: the figures above are not comparable');
    process.exitCode = 1;
  }
}

await main();
