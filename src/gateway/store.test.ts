import t from 'tap';
import { CaptureStore, parseSearch, storedBytes, type CaptureInput, type StoreEvent } from './store.js';

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
  t.same(store.stats(), { messages: 0, bytes: 0, evictions: 0 });
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
