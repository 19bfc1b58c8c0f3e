// Soak of the webhook under hostile input (not a test, not in CI; bounded in count and time):
//   1. HOSTILE_COUNT (100,000) AdmissionReviews mutated at random (seeded), 16 keep-alive connections:
//      every answer must be a well-formed AdmissionReview echoing the uid, or a clean 4xx/503 JSON error;
//      a 500, a reset or a crash counts as a failure.
//   2. The serving certificate rotated ROTATIONS (20) times the way the kubelet swaps a Secret volume,
//      under load with a new TLS handshake per request: 0 failed requests expected.
//
//   npm run bench:hostile
//   HOSTILE_COUNT=10000 HOSTILE_SECONDS=60 ROTATIONS=20 npm run bench:hostile
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { settingsFrom } from '../src/config.js';
import { createCertificateAuthority, createServerCertificate, type KeyPairPem } from '../src/pki/certificates.js';
import { createWebhookServer } from '../src/webhook/server.js';
import { admissionReview, civicrmPod } from './fixtures.js';

const COUNT = boundedInt('HOSTILE_COUNT', 100_000, 1, 1_000_000);
const SECONDS = boundedInt('HOSTILE_SECONDS', 300, 1, 1800);
const ROTATIONS = boundedInt('ROTATIONS', 20, 1, 200);
const CONNECTIONS = 16;

function boundedInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name}=${raw} must be an integer ${min}-${max}`);
  return value;
}

/** mulberry32: a seeded PRNG, so a failing input can be regenerated from its index. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = Record<string, any>; // any: hostile shapes on purpose
const JUNK: unknown[] = [null, 0, -1, 1e308, '', 'x'.repeat(5000), [], {}, true, [[[]]], { __proto__: { polluted: 1 } }];

/** One hostile request: body text, content type, and the uid a well-formed answer must echo (if any). */
function hostile(i: number): { body: string; contentType: string; uid?: string } {
  const rnd = prng(i);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const uid = `u-${i}`;
  const review = admissionReview(civicrmPod({ name: `p${i}` }), { uid }) as Json;
  const pod = review['request']['object'] as Json;
  switch (Math.floor(rnd() * 14)) {
    case 0:
      return { body: JSON.stringify(review), contentType: 'application/json', uid };
    case 1:
      return { body: JSON.stringify(pick(JUNK)), contentType: 'application/json' };
    case 2:
      review['request']['object'] = pick(JUNK);
      return { body: JSON.stringify(review), contentType: 'application/json', uid };
    case 3:
      pod['spec'] = pick(JUNK);
      return { body: JSON.stringify(review), contentType: 'application/json', uid };
    case 4:
      pod['spec']['containers'] = pick(JUNK);
      return { body: JSON.stringify(review), contentType: 'application/json', uid };
    case 5:
      pod['spec']['containers'][0]['env'] = pick(JUNK);
      return { body: JSON.stringify(review), contentType: 'application/json', uid };
    case 6:
      return { body: JSON.stringify(review).slice(0, Math.floor(rnd() * 2000)), contentType: 'application/json' };
    case 7:
      return { body: JSON.stringify(review).replace('"metadata"', '"__proto__":{"x":1},"metadata"'), contentType: 'application/json' };
    case 8:
      review[pick(['apiVersion', 'kind'])] = pick(JUNK);
      return { body: JSON.stringify(review), contentType: 'application/json' };
    case 9:
      review['request']['uid'] = pick(JUNK);
      return { body: JSON.stringify(review), contentType: 'application/json' };
    case 10:
      review['request'][pick(['operation', 'kind', 'resource', 'namespace'])] = pick(JUNK);
      return { body: JSON.stringify(review), contentType: 'application/json', uid };
    case 11:
      pod['spec']['containers'] = Array.from({ length: 257 + Math.floor(rnd() * 500) }, (_, n) => ({ name: `c${n}`, image: 'x' }));
      return { body: JSON.stringify(review), contentType: 'application/json', uid };
    case 12:
      return { body: '['.repeat(1 + Math.floor(rnd() * 20_000)), contentType: 'application/json' };
    default:
      return { body: JSON.stringify(review), contentType: pick(['text/plain', 'application/x-www-form-urlencoded', '']), uid };
  }
}

interface Outcome {
  ok: boolean;
  kind: string;
}

function post(port: number, agent: Agent, ca: string, body: string, contentType: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/mutate', method: 'POST', agent, ca, servername: 'localhost', headers: { ...(contentType ? { 'content-type': contentType } : {}), 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

function classify(status: number, text: string, uid: string | undefined): Outcome {
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    return { ok: false, kind: `${status} non-JSON` };
  }
  if (status === 200) {
    const r = json['response'] as Json | undefined;
    const wellFormed = json['apiVersion'] === 'admission.k8s.io/v1' && json['kind'] === 'AdmissionReview' && typeof r?.['allowed'] === 'boolean' && (uid === undefined || r?.['uid'] === uid);
    return { ok: wellFormed, kind: wellFormed ? `200 ${r?.['allowed'] ? (r?.['patch'] ? 'patched' : 'allowed') : 'denied'}` : '200 malformed' };
  }
  const clean = (status >= 400 && status < 500) || status === 503;
  return { ok: clean && typeof json['message'] === 'string', kind: String(status) };
}

/** A kubelet-style Secret volume: files are symlinks through `..data`, swapped atomically. */
function writeVolume(dir: string, generation: number, pair: KeyPairPem, caPem: string): void {
  const target = join(dir, `..gen${generation}`);
  mkdirSync(target);
  writeFileSync(join(target, 'tls.crt'), pair.certPem);
  writeFileSync(join(target, 'tls.key'), pair.keyPem);
  writeFileSync(join(target, 'ca.crt'), caPem);
  symlinkSync(`..gen${generation}`, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  if (generation === 0) for (const f of ['tls.crt', 'tls.key', 'ca.crt']) symlinkSync(join('..data', f), join(dir, f));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-hostile-'));
  const webhookCa = createCertificateAuthority({ commonName: 'hostile bench webhook CA' });
  const leaf = () => createServerCertificate({ ca: webhookCa, commonName: 'demomail-webhook', sans: ['localhost', '127.0.0.1'] });
  const mailCa = createCertificateAuthority({ commonName: 'hostile bench mail CA' });
  writeVolume(dir, 0, leaf(), mailCa.certPem);
  const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }));
  const server = await createWebhookServer({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt'), settings: settingsFrom({}), logger, debounceMs: 50 });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });

  // 1. Hostile reviews.
  const keepAlive = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const kinds = new Map<string, number>();
  const failures: string[] = [];
  let next = 0;
  const deadline = Date.now() + SECONDS * 1000;
  const started = performance.now();
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < COUNT && Date.now() < deadline) {
        const i = next++;
        const { body, contentType, uid } = hostile(i);
        let outcome: Outcome;
        try {
          const r = await post(port, keepAlive, webhookCa.certPem, body, contentType);
          outcome = classify(r.status, r.text, uid);
        } catch (err) {
          outcome = { ok: false, kind: `error ${(err as Error).message}` };
        }
        kinds.set(outcome.kind, (kinds.get(outcome.kind) ?? 0) + 1);
        if (!outcome.ok && failures.length < 20) failures.push(`#${i}: ${outcome.kind}`);
      }
    }),
  );
  clearInterval(sampler);
  keepAlive.destroy();
  const sent = [...kinds.values()].reduce((a, b) => a + b, 0);
  const bad = sent - [...kinds.entries()].filter(([k]) => !k.startsWith('error') && !k.includes('malformed') && !k.includes('non-JSON') && !k.startsWith('500')).reduce((a, [, v]) => a + v, 0);
  console.log(`hostile AdmissionReviews: ${sent} sent in ${((performance.now() - started) / 1000).toFixed(1)} s, ${bad} bad answers, crashes 0 (process alive), peak RSS ${(peakRss / 1048576).toFixed(0)} MiB`);
  console.log(`  answers: ${JSON.stringify(Object.fromEntries([...kinds.entries()].sort()))}`);
  for (const f of failures) console.log(`  failure ${f} (regenerate with hostile(${f.slice(1, f.indexOf(':'))}))`);

  // 2. Rotation under load, a new handshake per request.
  const fresh = new Agent({ keepAlive: false });
  let stop = false;
  let ok = 0;
  let failed = 0;
  const body = JSON.stringify(admissionReview(civicrmPod(), { uid: 'rotation' }));
  const load = Array.from({ length: 8 }, async () => {
    while (!stop) {
      try {
        const r = await post(port, fresh, webhookCa.certPem, body, 'application/json');
        if (r.status === 200) ok++;
        else failed++;
      } catch {
        failed++;
      }
    }
  });
  const serials = new Set<string>();
  for (let g = 1; g <= ROTATIONS; g++) {
    writeVolume(dir, g, leaf(), mailCa.certPem);
    await new Promise((r) => setTimeout(r, 300));
    await server.reload();
    serials.add(server.state.serving?.serialNumber ?? '');
  }
  stop = true;
  await Promise.all(load);
  console.log(`serving certificate rotated ${ROTATIONS} times under load (${serials.size} distinct serials served): ${ok} requests OK, ${failed} failed`);
  await server.app.close();
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = bad === 0 && failed === 0 ? 0 : 1;
}

await main();
