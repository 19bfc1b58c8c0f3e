// Admission benchmark (not a test): the real `demomail webhook` process vs a bare fastify HTTPS
// server process that answers the webhook's own bytes for the same pod (bench/bare-admission-server.ts).
// Each server is its own process so its CPU time and RSS can be read from /proc; autocannon loads
// them alternately from this process, with the same connections and body. The webhook is loaded twice per
// round: with the replicas of one template (the same review but for request.uid, as a ReplicaSet's pods
// arrive: answered from the answer cache after the first) and with every review new (the pod's name differs
// too: parsed, planned and encoded every time).
//
//   npm run bench:admission
//   BENCH_ROUNDS=3 BENCH_SECONDS=5 BENCH_CONNECTIONS=16 BENCH_POD=compact|large npm run bench:admission
//   BENCH_WEBHOOK_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof' (node flags for the webhook process)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon, { type Result } from 'autocannon';
import { freePort } from '../scripts/lib/greenmail.js';
import { createCertificateAuthority, createServerCertificate } from '../src/pki/certificates.js';
import { settingsFrom, injectionSettings } from '../src/config.js';
import { desiredInitContainer } from '../src/inject/template.js';
import { httpsCall, waitForChild } from './child-server.js';
import { admissionReview, civicrmPod, compactCivicrmPod } from './fixtures.js';

const ROUNDS = boundedInt('BENCH_ROUNDS', 3, 1, 10);
const SECONDS = boundedInt('BENCH_SECONDS', 5, 1, 30);
const CONNECTIONS = boundedInt('BENCH_CONNECTIONS', 16, 1, 100);
const POD = process.env['BENCH_POD'] ?? 'compact';
if (POD !== 'compact' && POD !== 'large') throw new Error(`BENCH_POD=${POD} must be compact (the issue 13 pod, ~4 KB) or large (17 KiB)`);
const CLOCK_TICKS_PER_SECOND = 100; // Linux USER_HZ (`getconf CLK_TCK`)

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
  cpuMsPerRequest: number;
  failures: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', 'src', 'cli.js');
const bareServer = join(here, 'bare-admission-server.js');
const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** user + system CPU seconds of a process, from /proc/PID/stat (fields 14 and 15, after the `(comm)`). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** VmRSS and VmHWM (peak RSS over the process's life) in KiB, from /proc/PID/status. */
function memoryKib(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

/** NODE_OPTIONS of container `webhook` in manifests/webhook.yaml (read as text: the bench needs no YAML parser). */
function deployedNodeOptions(): string {
  const manifest = readFileSync(join(here, '..', '..', 'manifests', 'webhook.yaml'), 'utf8');
  return /- name: NODE_OPTIONS\s+value: (.+)/.exec(manifest)?.[1]?.trim() ?? '';
}

/**
 * Peak RSS of `demomail install-ca` as the injected init container runs it (the process reports its own
 * resourceUsage().maxRSS on exit), next to the memory limit the injection gives it.
 */
function initContainerFootprint(dir: string, caPem: string): string {
  const report = join(dir, 'install-ca-maxrss');
  const hook = `data:text/javascript,import {writeFileSync} from "node:fs"; process.on("exit", () => writeFileSync(${JSON.stringify(report)}, String(process.resourceUsage().maxRSS)));`;
  const run = spawnSync(process.execPath, ['--import', hook, cli, 'install-ca', '--dir', join(dir, 'trust')], { env: { ...process.env, DEMOMAIL_CA_PEM: caPem }, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`install-ca failed: ${run.stderr}`);
  const limit = ((desiredInitContainer(injectionSettings(settingsFrom({}), caPem))['resources'] as { limits: { memory: string } }).limits.memory);
  return `init container (demomail install-ca, Node ${process.version}): peak RSS ${mib(Number(readFileSync(report, 'utf8')))} of its ${limit} limit`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-bench-'));
  const webhookCa = createCertificateAuthority({ commonName: 'bench webhook CA' });
  const serving = createServerCertificate({ ca: webhookCa, commonName: 'demomail-webhook', sans: ['localhost', '127.0.0.1'] });
  const mailCa = createCertificateAuthority({ commonName: 'bench mail CA' });
  writeFileSync(join(dir, 'tls.crt'), serving.certPem);
  writeFileSync(join(dir, 'tls.key'), serving.keyPem);
  writeFileSync(join(dir, 'ca.crt'), mailCa.certPem);

  // The webhook as the Deployment runs it: info logs to stdout (here /dev/null), metrics on, and the
  // Deployment's NODE_OPTIONS (manifests/webhook.yaml) unless BENCH_WEBHOOK_NODE_OPTIONS says otherwise.
  const webhookPort = await freePort();
  const webhook = spawn(process.execPath, [...(process.env['BENCH_WEBHOOK_NODE_OPTIONS'] ?? '').split(' ').filter(Boolean), cli, 'webhook', '--cert', join(dir, 'tls.crt'), '--key', join(dir, 'tls.key'), '--ca-file', join(dir, 'ca.crt'), '--port', String(webhookPort), '--host', '127.0.0.1'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEMOMAIL_DRAIN_SECONDS: '0', NODE_OPTIONS: deployedNodeOptions() },
  });
  await waitForChild(webhook, webhookPort, webhookCa.certPem, '/readyz', 'demomail webhook');

  const pod = POD === 'compact' ? compactCivicrmPod() : civicrmPod();
  const body = JSON.stringify(admissionReview(pod, { uid: 'bench-[<id>]' }));
  // autocannon puts a fresh id in every [<id>]: here the uid and the pod's name.
  const named = structuredClone(pod) as { metadata: Record<string, unknown> };
  named.metadata['name'] = 'civicrm-web-[<id>]';
  const distinctBody = JSON.stringify(admissionReview(named, { uid: 'bench-[<id>]' }));
  // The baseline sends the webhook's real answer for this pod, so both send the same bytes back.
  const probe = await httpsCall(webhookPort, webhookCa.certPem, '/mutate', body.replace('[<id>]', 'probe'));
  const probeJson = JSON.parse(probe.text) as { response?: { patchType?: string; patch?: string } };
  if (probe.status !== 200 || probeJson.response?.patchType !== 'JSONPatch' || !probeJson.response.patch) {
    throw new Error(`the webhook did not inject the benchmark pod: ${probe.status} ${probe.text.slice(0, 300)}`);
  }
  writeFileSync(join(dir, 'answer.json'), probe.text);
  const patchJson = Buffer.from(probeJson.response.patch, 'base64').toString('utf8');
  const ops = (JSON.parse(patchJson) as unknown[]).length;

  const barePort = await freePort();
  const bare = spawn(process.execPath, [bareServer, join(dir, 'tls.crt'), join(dir, 'tls.key'), join(dir, 'answer.json'), String(barePort)], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForChild(bare, barePort, webhookCa.certPem, '/readyz', 'bare server');

  const servers = {
    baseline: { child: bare, port: barePort, body },
    webhook: { child: webhook, port: webhookPort, body },
    'webhook, every review new': { child: webhook, port: webhookPort, body: distinctBody },
  } as const;
  type Target = keyof typeof servers;
  const targets = Object.keys(servers) as Target[];
  const pid = (target: Target): number => servers[target].child.pid!;
  await new Promise((r) => setTimeout(r, 1000));
  const idle = { baseline: memoryKib(pid('baseline')).rss, webhook: memoryKib(pid('webhook')).rss };

  const run = (target: Target, seconds: number): Promise<Result> =>
    autocannon({
      url: `https://127.0.0.1:${servers[target].port}/mutate`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: servers[target].body,
      idReplacement: true,
      connections: CONNECTIONS,
      duration: seconds,
      servername: 'localhost',
      tlsOptions: { ca: webhookCa.certPem, servername: 'localhost' },
    });

  console.log(`demomail admission benchmark — Node ${process.version}, ${ROUNDS} rounds x ${SECONDS} s per server, ${CONNECTIONS} keep-alive TLS connections, each server its own process; webhook NODE_OPTIONS "${deployedNodeOptions()}"`);
  console.log(
    `AdmissionReview (${POD} pod): ${Buffer.byteLength(body)} bytes; answer ${Buffer.byteLength(probe.text)} bytes: ${ops} ops, patch ${Buffer.byteLength(patchJson)} bytes of JSON, ${probeJson.response.patch.length} base64`,
  );
  console.log('warm-up: 2 s each');
  for (const target of targets) await run(target, 2);

  const samples = Object.fromEntries(targets.map((t) => [t, [] as Sample[]])) as Record<Target, Sample[]>;
  for (let round = 1; round <= ROUNDS; round += 1) {
    // Rotate the order so drift (thermal, GC, a background job) does not favour one side.
    const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]!);
    for (const target of order) {
      const cpuBefore = cpuSeconds(pid(target));
      const result = await run(target, SECONDS);
      const cpu = cpuSeconds(pid(target)) - cpuBefore;
      const sample: Sample = {
        rps: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        cpuMsPerRequest: (cpu * 1000) / Math.max(result.requests.total, 1),
        failures: result.errors + result.timeouts + result.non2xx,
      };
      samples[target].push(sample);
      console.log(
        `round ${round} ${target.padEnd(25)} ${sample.rps.toFixed(0).padStart(7)} req/s  p50 ${sample.p50.toFixed(2).padStart(6)} ms  p99 ${sample.p99.toFixed(2).padStart(6)} ms  server CPU ${sample.cpuMsPerRequest.toFixed(3)} ms/req  failed ${sample.failures}`,
      );
    }
  }

  const summary = (target: Target) => ({
    rps: median(samples[target].map((s) => s.rps)),
    p50: median(samples[target].map((s) => s.p50)),
    p99: median(samples[target].map((s) => s.p99)),
    cpu: median(samples[target].map((s) => s.cpuMsPerRequest)),
    failures: samples[target].reduce((n, s) => n + s.failures, 0),
    idle: idle[target === 'baseline' ? 'baseline' : 'webhook'],
    peak: memoryKib(pid(target)).peak,
  });
  const base = summary('baseline');
  console.log('\nmedian over rounds              req/s     p50 ms    p99 ms  CPU ms/req   idle RSS   peak RSS  failed');
  const figures = targets.map((target) => [target, summary(target)] as const);
  for (const [name, s] of figures) {
    console.log(
      `${name.padEnd(29)} ${s.rps.toFixed(0).padStart(8)} ${s.p50.toFixed(2).padStart(10)} ${s.p99.toFixed(2).padStart(9)} ${s.cpu.toFixed(3).padStart(11)} ${mib(s.idle).padStart(10)} ${mib(s.peak).padStart(10)} ${String(s.failures).padStart(7)}`,
    );
  }
  const ratio = (a: number, b: number): string => (a / Math.max(b, 0.001)).toFixed(2);
  for (const [name, mine] of figures.slice(1)) {
    console.log(
      `${name} / baseline: req/s ${ratio(mine.rps, base.rps)} (target ≥ 0.6)  p99 ${ratio(mine.p99, base.p99)} (≤ 1.5)  CPU/request ${mine.cpu.toFixed(3)} ms (≤ 0.15)  ` +
        `idle RSS ${ratio(mine.idle, base.idle)} (≤ 1.2)  peak RSS ${ratio(mine.peak, base.peak)} (≤ 1.2)`,
    );
  }

  console.log(initContainerFootprint(dir, mailCa.certPem));

  for (const child of [bare, webhook]) child.kill('SIGTERM');
  await Promise.all([bare, webhook].map((child) => (child.exitCode === null ? new Promise((r) => child.once('exit', r)) : undefined)));
  rmSync(dir, { recursive: true, force: true });
  if (figures.some(([, s]) => s.failures > 0)) {
    console.error('some requests failed: the figures above are not comparable');
    process.exitCode = 1;
  }
}

await main();
