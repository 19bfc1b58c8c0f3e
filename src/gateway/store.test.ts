import { randomBytes } from 'node:crypto';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import t from 'tap';
import { summarizeMessage, summarizeNow } from './summary.js';
import { CaptureStore, COMPRESS_MIN_BYTES, compressionOptionsFor, deflateStrategy, parseSearch, SAMPLE_FROM_BYTES, storedBytes, SYNC_COMPRESS_BELOW_BYTES, type CaptureInput, type StoreEvent } from './store.js';

function input(subject: string, opts: Partial<CaptureInput> & { bytes?: number } = {}): CaptureInput {
  const raw = Buffer.alloc(opts.bytes ?? 100, 'x');
  return {
    raw,
    envelope: opts.envelope ?? { mailFrom: 'sender@demomail.test', rcptTo: ['a@demomail.test'] },
    clientAddress: '127.0.0.1',
    origin: 'smtp',
    deliveries: opts.deliveries ?? [{ recipient: 'a@demomail.test', mailbox: 'a@demomail.test', rule: 'direct' }],
    summary: { subject, from: 'Sender <sender@demomail.test>', to: ['a@demomail.test'], cc: [], hasHtml: false, attachmentCount: 0, snippet: '', text: `body of ${subject}`.toLowerCase() },
  };
}

t.test('search terms: prefixes, quotes, free text', async (t) => {
  const table: [string, ReturnType<typeof parseSearch>][] = [
    ['', []],
    ['hello', [{ field: 'any', value: 'hello' }]],
    ['from:Bob subject:"Donation Receipt" x', [{ field: 'from', value: 'bob' }, { field: 'subject', value: 'donation receipt' }, { field: 'any', value: 'x' }]],
    ['to:a@b mailbox:imap', [{ field: 'to', value: 'a@b' }, { field: 'mailbox', value: 'imap' }]],
    ['cc:x', [{ field: 'any', value: 'cc:x' }]],
  ];
  for (const [query, want] of table) t.same(parseSearch(query), want, query);
});

t.test('newest first, paging, filters', async (t) => {
  const store = new CaptureStore({ maxMessages: 100, maxBytes: 1024 ** 2 });
  store.add(input('first'));
  store.add(input('second', { deliveries: [{ recipient: 'imap+b.1.2.0123456789abcdef@demomail.test', mailbox: 'imap@demomail.test', rule: 'plus-address' }] }));
  store.add(input('third'));
  t.same(store.list().messages.map((m) => m.summary.subject), ['third', 'second', 'first']);
  t.same(store.list({ start: 1, limit: 1 }), { total: 3, start: 1, messages: [store.list().messages[1]] });
  t.same(store.list({ mailbox: 'IMAP@demomail.test' }).messages.map((m) => m.summary.subject), ['second']);
  t.same(store.list({ search: 'subject:thi' }).messages.map((m) => m.summary.subject), ['third']);
  t.same(store.list({ search: 'body first' }).messages.map((m) => m.summary.subject), ['first'], 'free-text terms are ANDed word by word');
  t.same(store.list({ search: 'first third' }).total, 0);
  t.same(store.list({ search: '"body of first"' }).messages.map((m) => m.summary.subject), ['first']);
  t.same(store.list({ search: 'to:imap+b.1.2' }).total, 1, 'original recipients are searchable');
  t.same(store.mailboxes(), ['a@demomail.test', 'imap@demomail.test']);
});

t.test('bounded by count and bytes, oldest evicted first, evictions counted and announced', async (t) => {
  const store = new CaptureStore({ maxMessages: 3, maxBytes: 10_000 });
  const events: StoreEvent[] = [];
  store.events.on('event', (e: StoreEvent) => events.push(e));
  const ids = [1, 2, 3, 4].map((n) => store.add(input(`m${n}`)).id);
  t.same(store.list().messages.map((m) => m.summary.subject), ['m4', 'm3', 'm2']);
  t.equal(store.get(ids[0] as string), undefined);
  t.same(events.filter((e) => e.type === 'evicted'), [{ type: 'evicted', ids: [ids[0]] }]);
  store.add(input('big', { bytes: 9_000 }));
  t.same(store.list().messages.map((m) => m.summary.subject), ['big'], 'byte bound evicts all older ones');
  t.equal(store.stats().evictions, 4);
  t.equal(store.stats().bytes, storedBytes(input('big', { bytes: 9_000 })));
  store.add(input('huge', { bytes: 50_000 }));
  t.same(store.list().messages.map((m) => m.summary.subject), ['huge'], 'a message larger than the bound is kept alone, never dropped on arrival');
});

t.test('delete and purge', async (t) => {
  const store = new CaptureStore({ maxMessages: 10, maxBytes: 1024 ** 2 });
  const a = store.add(input('a'));
  store.add(input('b'));
  t.equal(store.delete(a.id), true);
  t.equal(store.delete(a.id), false);
  t.equal(store.stats().messages, 1);
  store.purge();
  t.same(store.stats(), { messages: 0, bytes: 0, heldBytes: 0, evictions: 0 });
});

t.test('a raw Buffer that is a view onto a larger ArrayBuffer is stored as its own copy', async (t) => {
  const store = new CaptureStore({ maxMessages: 10, maxBytes: 1024 ** 2 });
  const big = Buffer.alloc(64 * 1024, 'y');
  const view = big.subarray(100, 200);
  const stored = store.add({ ...input('view'), raw: view });
  t.equal(stored.raw.buffer.byteLength, 100, 'does not retain the 64 KiB ArrayBuffer');
  t.same(stored.raw, view);
  const own = Buffer.allocUnsafeSlow(10).fill('z');
  t.equal(store.add({ ...input('own'), raw: own }).raw, own, 'a Buffer that owns its memory is kept as is');
});

t.test('free text matches any one field, the body text included', async (t) => {
  const store = new CaptureStore({ maxMessages: 10, maxBytes: 1024 ** 2 });
  store.add(input('Quarterly Report'));
  for (const search of ['quarterly', 'sender@demomail', 'a@demomail.test', 'body of quarterly']) t.equal(store.list({ search }).total, 1, search);
  t.equal(store.list({ search: 'nowhere' }).total, 0);
});

/** A text message of about `bytes` bytes: headers and varied prose (compresses like real mail). */
function textMessage(bytes: number): Buffer {
  const words = 'thank you for your donation to the spring campaign your receipt number is attached please keep it for your tax records'.split(' ');
  let body = 'From: Org <org@demomail.test>\r\nTo: donor@example.org\r\nSubject: Your receipt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n';
  for (let i = 0; body.length < bytes; i++) body += `${words[(i * 7 + (i >> 3)) % words.length]}${i % 13 === 12 ? '.\r\n' : ' '}`;
  return Buffer.from(body.slice(0, bytes));
}

t.test('compressed at rest: byte-identical round trip, bounds on raw bytes, held bytes on what is kept', async (t) => {
  const store = new CaptureStore({ maxMessages: 100, maxBytes: 1024 ** 3 });
  const samples: [string, Buffer][] = [
    ['text', textMessage(50_000)],
    ['binary (random bytes)', randomBytes(50_000)],
    ['binary with zeros', Buffer.concat([Buffer.alloc(30_000), randomBytes(2_000), Buffer.alloc(30_000, 0xff)])],
    ['empty', Buffer.alloc(0)],
    ['just below the minimum', Buffer.alloc(COMPRESS_MIN_BYTES - 1, 'a')],
    ['at the minimum', Buffer.alloc(COMPRESS_MIN_BYTES, 'a')],
  ];
  const stored = samples.map(([name, raw]) => ({ name, raw: Buffer.from(raw), record: store.add({ ...input(name), raw }) }));
  const before = store.stats();
  t.equal(before.heldBytes, before.bytes, 'held = accounted until the compression ran');
  for (const { name, raw, record } of stored) t.ok(record.raw.equals(raw), `${name}: identical right after add`);
  await store.compressed();
  for (const { name, raw, record } of stored) {
    t.ok(record.raw.equals(raw), `${name}: identical after compression (record from add)`);
    t.ok(store.get(record.id)?.raw.equals(raw), `${name}: identical through get`);
    t.equal(record.size, raw.length, `${name}: size stays the raw size`);
  }
  const after = store.stats();
  t.equal(after.bytes, before.bytes, 'accounted bytes stay on raw sizes');
  const text = stored[0]?.raw as Buffer;
  const compressedLength = (raw: Buffer) => deflateRawSync(raw, compressionOptionsFor(raw)).length;
  const saved = text.length - compressedLength(text);
  const atMin = COMPRESS_MIN_BYTES - compressedLength(Buffer.alloc(COMPRESS_MIN_BYTES, 'a'));
  const zeros = (stored[2]?.raw as Buffer).length - compressedLength(stored[2]?.raw as Buffer);
  t.equal(after.heldBytes, before.bytes - saved - atMin - zeros, 'held bytes: text, zeros and the minimum-size one compressed; random, empty and tiny kept raw');
  t.ok(after.heldBytes < after.bytes - 40_000);
  t.same(JSON.parse(JSON.stringify(stored[0]?.record)).raw, JSON.parse(JSON.stringify(text)), 'raw is an enumerable field as before');
  t.ok(Object.keys({ ...(stored[0]?.record as object) }).includes('raw'), 'and kept by a spread');
  store.purge();
  t.same(store.stats(), { messages: 0, bytes: 0, heldBytes: 0, evictions: 0 });
});

t.test('incompressible data is kept raw: the same Buffer, no inflate on read', async (t) => {
  const store = new CaptureStore({ maxMessages: 10, maxBytes: 1024 ** 2 });
  const raw = randomBytes(20_000);
  const record = store.add({ ...input('random'), raw });
  await store.compressed();
  t.equal(record.raw, raw, 'the very Buffer stored');
  t.equal(store.stats().heldBytes, store.stats().bytes);
  // base64 of random bytes saves ≈ 25 %: kept compressed.
  const b64 = Buffer.from(randomBytes(15_000).toString('base64').replace(/.{76}/g, '$&\r\n'));
  const encoded = store.add({ ...input('base64'), raw: b64 });
  await store.compressed();
  t.ok(encoded.raw.equals(b64));
  t.ok(store.stats().heldBytes < store.stats().bytes - b64.length / 5, 'base64 attachment saves a fifth or more');
});

t.test('deflateStrategy: Huffman alone only where LZ77 finds nothing (a sample at 70 % or more)', async (t) => {
  const cases: [string, number, number, number, 'lz77' | 'huffman'][] = [
    ['small message: level 1 whatever the sample', SAMPLE_FROM_BYTES - 1, 8192, 8192, 'lz77'],
    ['base64 attachment (76 %)', 1_000_000, 8192, 6226, 'huffman'],
    ['just at 70 %', 100_000, 1000, 700, 'huffman'],
    ['just below 70 %', 100_000, 1000, 699, 'lz77'],
    ['text or HTML (20 %)', 100_000, 8192, 1638, 'lz77'],
    ['empty sample', 100_000, 0, 0, 'lz77'],
  ];
  for (const [name, raw, sample, compressed, expected] of cases) t.equal(deflateStrategy(raw, sample, compressed), expected, name);
});

t.test('a large base64 message: Huffman-coded at rest, the same bytes on read, about the size level 1 gives', async (t) => {
  const store = new CaptureStore({ maxMessages: 10, maxBytes: 1024 ** 3 });
  const raw = Buffer.concat([textMessage(2_000), Buffer.from(randomBytes(300_000).toString('base64').replace(/.{76}/g, '$&\r\n'))]);
  const record = store.add({ ...input('pdf'), raw });
  await store.compressed();
  t.ok(record.raw.equals(raw), 'identical on read');
  const held = store.stats().heldBytes;
  const levelOne = deflateRawSync(raw, { level: 1 }).length;
  t.ok(held < raw.length * 0.8, `compressed (${held} of ${raw.length})`);
  t.ok(held < levelOne * 1.03, `within 3 % of level 1 (${held} vs ${levelOne})`);
});

t.test('delete, eviction and purge while a compression is queued or in flight: gone for good, nothing leaks', async (t) => {
  const store = new CaptureStore({ maxMessages: 3, maxBytes: 1024 ** 3 });
  const raw = textMessage(2_000_000); // a few ms on the threadpool: still in flight when we act
  const a = store.add({ ...input('a'), raw });
  const b = store.add({ ...input('b'), raw }); // queued behind a
  t.equal(store.delete(a.id), true, 'deleted while in flight');
  t.equal(store.delete(b.id), true, 'deleted while queued');
  const c = store.add({ ...input('c'), raw });
  for (const n of [1, 2, 3]) store.add({ ...input(`d${n}`), raw }); // evicts c (count bound) while queued or in flight
  t.equal(store.get(c.id), undefined);
  await store.compressed();
  t.equal(store.get(a.id), undefined, 'no resurrection after delete');
  t.equal(store.get(b.id), undefined);
  t.equal(store.get(c.id), undefined, 'no resurrection after eviction');
  t.same(store.list().messages.map((m) => m.summary.subject), ['d3', 'd2', 'd1']);
  t.ok(a.raw.equals(raw) && c.raw.equals(raw), 'a reader still holding a removed record gets its bytes');
  const stats = store.stats();
  t.equal(stats.bytes, 3 * storedBytes({ ...input('x'), raw }) + 3 * 'body of dn'.length - 3 * 'body of x'.length);
  const each = deflateRawSync(raw, { level: 1 }).length + (stats.bytes / 3 - raw.length);
  t.equal(stats.heldBytes, 3 * each, 'held bytes count only the three stored, compressed');

  const e = store.add({ ...input('e'), raw }); // in flight at once (the queue was idle)
  for (const n of [1, 2, 3]) store.add({ ...input(`f${n}`), raw }); // evicts d1–d3 and e
  t.equal(store.get(e.id), undefined, 'evicted while in flight');
  t.equal(store.stats().evictions, 5);
  await store.compressed();
  t.equal(store.get(e.id), undefined, 'no resurrection after an eviction in flight');
  t.equal(store.stats().heldBytes, 3 * each);

  const p = store.add({ ...input('p'), raw });
  store.purge();
  t.same(store.stats(), { messages: 0, bytes: 0, heldBytes: 0, evictions: 6 }, 'purge while in flight');
  await store.compressed();
  t.equal(store.get(p.id), undefined);
  t.same(store.stats(), { messages: 0, bytes: 0, heldBytes: 0, evictions: 6 }, 'the late result changes nothing');
  t.ok(p.raw.equals(raw) && e.raw.equals(raw));
});

t.test('small messages: compressed synchronously, a slice at a time, the event loop served in between', async (t) => {
  const store = new CaptureStore({ maxMessages: 5000, maxBytes: 1024 ** 3, compressAfterQuietMs: 0 });
  const b64 = Buffer.from(randomBytes(45_000).toString('base64').replace(/.{76}/g, '$&\r\n'));
  t.equal(compressionOptionsFor(b64).strategy, zlibConstants.Z_HUFFMAN_ONLY, 'a base64 message between 32 and 64 KiB is still sampled');
  t.ok(b64.length < SYNC_COMPRESS_BELOW_BYTES);
  const raws = Array.from({ length: 3000 }, (_, i) => textMessage(10_000 + i));
  const records = raws.map((raw, i) => store.add({ ...input(`m${i}`), raw }));
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 1);
  const started = performance.now();
  await store.compressed();
  const took = performance.now() - started;
  clearInterval(ticker);
  t.ok(ticks >= Math.min(10, took / 10), `timers kept firing while 3,000 messages were compressed (${ticks} ticks in ${took.toFixed(0)} ms)`);
  t.ok(store.stats().heldBytes < store.stats().bytes * 0.6, 'all compressed');
  for (const i of [0, 1499, 2999]) t.ok(records[i]?.raw.equals(raws[i] as Buffer), `message ${i}: the same bytes on read`);
  // A large one queued behind small ones goes to the threadpool and still completes.
  const large = textMessage(300_000);
  const small = textMessage(5_000);
  const l = store.add({ ...input('large'), raw: large });
  const m = store.add({ ...input('small after large'), raw: small });
  await store.compressed();
  t.ok(l.raw.equals(large) && m.raw.equals(small));
  t.ok(store.stats().heldBytes < store.stats().bytes * 0.6);
});

t.test('compression waits for a quiet moment: nothing is compressed while messages keep arriving', async (t) => {
  const store = new CaptureStore({ maxMessages: 100, maxBytes: 1024 ** 3, compressAfterQuietMs: 150 });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  for (let i = 0; i < 5; i++) {
    store.add({ ...input(`burst ${i}`), raw: textMessage(20_000) });
    await sleep(50); // a steady trickle, never 150 ms apart
    t.equal(store.stats().heldBytes, store.stats().bytes, `after message ${i + 1}: still held raw`);
  }
  await store.compressed();
  t.ok(store.stats().heldBytes < store.stats().bytes - 50_000, 'the backlog is compressed in the pause');
});

t.test('deferred summaries: none on add, parsed in the quiet moment or on first read, the same as parsed before', async (t) => {
  const calls = { now: 0, later: 0 };
  const summarizer = {
    now: (raw: Buffer) => {
      calls.now++;
      return summarizeNow(raw);
    },
    later: (raw: Buffer) => {
      calls.later++;
      return summarizeMessage(raw);
    },
  };
  const store = new CaptureStore({ maxMessages: 100, maxBytes: 1024 ** 3, compressAfterQuietMs: 100 }, summarizer);
  const { summary: _given, ...bare } = input('unused');
  const receipt = textMessage(10_000);
  const a = store.add({ ...bare, raw: receipt });
  const b = store.add({ ...bare, raw: textMessage(500) }); // below the compression threshold: queued for its summary alone
  t.equal(calls.now, 0, 'nothing parsed on the path that answers the client');
  t.equal(store.stats().bytes, 10_000 + 512 + 500 + 512, 'no summary held yet: raw bytes and the fixed overhead');
  t.equal(a.summary.subject, 'Your receipt', 'a read parses it at once');
  t.equal(calls.now, 1);
  t.same(a.summary, await summarizeMessage(receipt), 'the same summary the accept path used to parse');
  t.same(JSON.parse(JSON.stringify(a)).summary, a.summary, 'enumerable: JSON of the record has it');
  await store.compressed();
  t.equal(calls.now, 2, 'the other one in the quiet moment; none twice');
  t.equal(calls.later, 0, 'mailparser never needed');
  t.equal(b.summary.subject, 'Your receipt');
  t.equal(store.stats().bytes, 10_000 + a.summary.text.length + a.summary.snippet.length + 512 + 500 + b.summary.text.length + b.summary.snippet.length + 512, 'then the real overhead');
  t.same(store.list({ search: 'subject:receipt donation' }).messages.map((m) => m.id), [b.id, a.id]);

  // A search reads the summaries it needs before the quiet moment comes.
  const c = store.add({ ...bare, raw: textMessage(3_000) });
  t.same(store.list({ search: 'from:org@demomail.test' }).messages.map((m) => m.id), [c.id, b.id, a.id], 'found by a header only the summary has');
  t.equal(calls.now, 3);
  await store.compressed();
  t.equal(calls.now, 3, 'not parsed again in the quiet moment');
});

t.test('deferred summaries: the search text they add counts against the byte bound, and the quiet moment evicts beyond it', async (t) => {
  const store = new CaptureStore({ maxMessages: 100, maxBytes: 10 * (20_000 + 512) + 10_000, compressAfterQuietMs: 50 });
  const { summary: _given, ...bare } = input('unused');
  const events: StoreEvent[] = [];
  store.events.on('event', (e: StoreEvent) => events.push(e));
  const records = Array.from({ length: 10 }, () => store.add({ ...bare, raw: textMessage(20_000) }));
  t.equal(store.stats().messages, 10, 'all ten fit while no summary is held');
  await store.compressed();
  const { bytes, messages } = store.stats();
  t.ok(bytes <= 10 * (20_000 + 512) + 10_000, `bounded again (${bytes} bytes)`);
  t.ok(messages < 10 && messages > 0, `the oldest evicted (${messages} left)`);
  t.same(store.list().messages.map((m) => m.id), records.slice(10 - messages).reverse().map((r) => r.id), 'the newest kept');
  t.same(events.filter((e) => e.type === 'evicted').flatMap((e) => (e.type === 'evicted' ? e.ids : [])), records.slice(0, 10 - messages).map((r) => r.id), 'announced like any eviction');
  t.equal(store.stats().evictions, 10 - messages);
});

t.test('deferred summaries: a message only mailparser reads shows its headers at once, the whole summary when mailparser is done', async (t) => {
  const store = new CaptureStore({ maxMessages: 100, maxBytes: 1024 ** 3, compressAfterQuietMs: 200 });
  const { summary: _given, ...bare } = input('unused');
  // Latin-1 text: left to mailparser by the fast path.
  const raw = Buffer.concat([
    Buffer.from('From: Caf\xe9 <cafe@demomail.test>\r\nTo: donor@example.org\r\nSubject: =?iso-8859-1?q?Re=E7u?=\r\nMessage-ID: <latin@demomail.test>\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n', 'latin1'),
    Buffer.from('Merci pour votre don, voici votre re\xe7u.\r\n', 'latin1'),
  ]);
  t.equal(summarizeNow(raw).complete, false, 'the fast path leaves it to mailparser');
  const m = store.add({ ...bare, raw });
  t.equal(m.summary.subject, 'Reçu', 'headers at once');
  t.equal(m.summary.messageIdHeader, '<latin@demomail.test>');
  t.equal(m.summary.snippet, '', 'no body yet');
  const events: string[] = [];
  store.events.on('event', (e: StoreEvent) => events.push(e.type === 'summarized' ? `summarized ${e.message.id}` : e.type));
  await store.summarized(m);
  t.match(m.summary.snippet, /voici votre reçu/, '`summarized` settles with the whole summary');
  t.same(events, [`summarized ${m.id}`], 'announced');
  await store.compressed();
  t.same(m.summary, await summarizeMessage(raw), 'then what mailparser reads');
  t.match(m.summary.snippet, /voici votre reçu/);
  t.same(store.list({ search: 'votre' }).messages.map((x) => x.id), [m.id], 'its body text is searchable');
  t.equal(store.stats().bytes, raw.length + m.summary.text.length + m.summary.snippet.length + 512);
});

t.test('ids: unique, in order, with a random part that is not the same twice', async (t) => {
  const store = new CaptureStore({ maxMessages: 1000, maxBytes: 1024 ** 3 });
  const ids = Array.from({ length: 600 }, (_, i) => store.add(input(`m${i}`)).id); // more than one batch of random bytes
  t.equal(new Set(ids).size, 600);
  t.same([...ids].sort(), ids, 'sortable by arrival');
  t.equal(new Set(ids.map((id) => id.slice(6))).size, 600, 'random suffixes differ');
  t.ok(ids.every((id) => /^[0-9a-z]{6}[0-9a-f]{10}$/.test(id)));
});
