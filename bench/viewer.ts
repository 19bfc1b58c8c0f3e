// Viewer benchmark (not a test): a full capture store (5,000 messages, mixed sizes up to 200 KB)
// behind the viewer plugin on a real socket. Prints the list API's p50/p99 for a page of 50 with and
// without search, the parsed view of one message (cache miss and hit), and the time until Chromium
// shows the first page of the list.
//
//   npm run bench:viewer
//   BENCH_MESSAGES=5000 BENCH_SAMPLES=200 npm run bench:viewer
import { randomInt } from 'node:crypto';
import { CaptureStore, type MessageSummary } from '../src/gateway/store.js';
import { summarizeMessage } from '../src/gateway/summary.js';
import { composeMessage, startViewerServer } from '../scripts/lib/viewer-fixture.js';
import { chromiumPath, launchChromium } from '../scripts/lib/chromium.js';

const MESSAGES = Number(process.env['BENCH_MESSAGES'] ?? 5000);
const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 200);
const TARGETS = { listP50: 20, viewP50: 50, renderedMs: 1000 };

const WORDS = 'donation receipt invoice newsletter event registration reminder membership renewal refund campaign volunteer thanks'.split(' ');
const word = () => WORDS[randomInt(WORDS.length)] as string;

/** 70 % small (2–10 KB), 25 % medium (10–50 KB), 5 % large (50–200 KB, an attachment). */
function size(): number {
  const r = Math.random();
  if (r < 0.7) return 2_000 + randomInt(8_000);
  if (r < 0.95) return 10_000 + randomInt(40_000);
  return 50_000 + randomInt(150_000);
}

async function message(i: number): Promise<{ raw: Buffer; summary: MessageSummary; to: string[] }> {
  const bytes = size();
  const to = Array.from({ length: 1 + (i % 3) }, (_, k) => `contact${(i * 7 + k) % 900}@example.org`);
  const text = Array.from({ length: Math.ceil(Math.min(bytes, 40_000) / 8) }, word).join(' ');
  const raw = await composeMessage({
    from: `Org ${i % 40} <org${i % 40}@demomail.test>`,
    to,
    subject: `${word()} ${word()} #${i}`,
    text,
    html: `<html><body><h1>${word()}</h1><p>${text}</p><img src="https://tracker.example/${i}.gif"></body></html>`,
    ...(bytes > 50_000 ? { attachments: [{ filename: `report-${i}.pdf`, content: Buffer.alloc(bytes - 40_000, i % 256), contentType: 'application/pdf' }] } : {}),
  });
  return { raw, summary: await summarizeMessage(raw), to };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function timed(samples: number, request: (i: number) => Promise<Response>): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    const res = await request(i);
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`HTTP ${res.status} for sample ${i}`);
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

const store = new CaptureStore({ maxMessages: MESSAGES, maxBytes: 1024 * 1024 * 1024 });
const fillStart = performance.now();
let bytes = 0;
for (let i = 0; i < MESSAGES; i++) {
  const m = await message(i);
  bytes += m.raw.length;
  store.add({ raw: m.raw, envelope: { mailFrom: `org${i % 40}@demomail.test`, rcptTo: m.to }, clientAddress: '127.0.0.1', origin: 'submission', deliveries: m.to.map((r) => ({ recipient: r, mailbox: r, rule: 'direct' })), summary: m.summary });
}
const ids = store.list({ limit: 1000 }).messages.map((m) => m.id).concat(store.list({ start: 1000, limit: 1000 }).messages.map((m) => m.id));
console.log(`store: ${MESSAGES} messages, ${(bytes / 1024 / 1024).toFixed(0)} MiB raw, filled in ${((performance.now() - fillStart) / 1000).toFixed(1)} s`);

const server = await startViewerServer({ store });
const api = (path: string) => fetch(`${server.url}${path}`);
await timed(20, () => api('/api/v1/messages?limit=50')); // warm-up

const results: [string, { p50: number; p99: number }, number | undefined][] = [
  ['list, page of 50', await timed(SAMPLES, (i) => api(`/api/v1/messages?limit=50&start=${(i % 10) * 50}`)), TARGETS.listP50],
  ['list, search subject:receipt', await timed(SAMPLES, () => api('/api/v1/messages?limit=50&query=subject:receipt')), TARGETS.listP50],
  ['list, search to: + free text', await timed(SAMPLES, (i) => api(`/api/v1/messages?limit=50&query=${encodeURIComponent(`to:contact${i % 900}@ volunteer`)}`)), TARGETS.listP50],
  ['parsed view, first open (cache miss)', await timed(SAMPLES, (i) => api(`/api/v1/messages/${ids[i * 7] ?? ids[0]}`)), TARGETS.viewP50],
  ['parsed view, again (cache hit)', await timed(SAMPLES, () => api(`/api/v1/messages/${ids[0]}`)), undefined],
];

let rendered: number[] = [];
const executable = chromiumPath();
if (executable) {
  const browser = await launchChromium(executable);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  for (let i = 0; i < 6; i++) {
    const start = performance.now();
    await page.goto(server.url, { waitUntil: 'commit' });
    await page.locator('#rows .row').nth(49).waitFor();
    rendered.push(performance.now() - start);
  }
  await browser.close();
  rendered = rendered.slice(1).sort((a, b) => a - b); // the first load also starts the renderer
}
await server.close();

console.log('\n| what | p50 | p99 | target (p50) |\n|---|---|---|---|');
for (const [name, r, target] of results) {
  console.log(`| ${name} | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ${target === undefined ? '' : `≤ ${target} ms ${r.p50 <= target ? 'ok' : 'MISSED'}`} |`);
}
if (rendered.length > 0) {
  const median = percentile(rendered, 50);
  console.log(`| Chromium: navigation → 50 rows shown (median of 5) | ${median.toFixed(0)} ms | max ${Math.max(...rendered).toFixed(0)} ms | ≤ ${TARGETS.renderedMs} ms ${median <= TARGETS.renderedMs ? 'ok' : 'MISSED'} |`);
} else {
  console.log('| Chromium | not measured: chromium not installed | | |');
}
console.log(`\nNode ${process.version}, RSS ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MiB`);
