// The accept path with a recording deliverer: what is delivered, what is stored, and what is not
// when GreenMail refuses a copy.
import { pino } from 'pino';
import t from 'tap';
import { settingsFrom } from '../config.js';
import { AcceptPath, DeliveryError, MAX_STREAMED_COPIES } from './accept.js';
import { deliveryCopy, type StreamedCopy, type StreamFn } from './delivery.js';
import { createGatewayMetrics } from './metrics.js';
import { CaptureStore } from './store.js';

const settings = settingsFrom({});
const routing = { mailDomain: settings.mailDomain, simulateDomain: settings.gateway.simulateDomain, bounceMailbox: settings.gateway.bounceMailbox, verpLocalpart: settings.gateway.verpLocalpart };
const raw = Buffer.from('From: smtp@demomail.test\r\nTo: x@demomail.test\r\nSubject: hello\r\nMessage-ID: <m1@demomail.test>\r\n\r\nbody\r\n');

function setup(refuse?: (mailbox: string) => boolean, stream?: StreamFn) {
  const store = new CaptureStore({ maxMessages: 10, maxBytes: 1024 ** 2 });
  const delivered: { mailFrom: string; mailbox: string; copy: string }[] = [];
  const path = new AcceptPath({
    store,
    deliver: async (mailFrom, mailbox, copy) => {
      if (refuse?.(mailbox)) throw new Error('451 try later');
      delivered.push({ mailFrom, mailbox, copy: copy.toString('utf8') });
    },
    ...(stream ? { stream } : {}),
    routing,
    metrics: createGatewayMetrics(store, { defaultMetrics: false }),
    logger: pino({ level: 'silent' }),
    reportingMta: 'smtpdemo.demomail.svc.cluster.local',
    now: () => new Date('2026-12-01T00:00:00Z'),
  });
  return { store, delivered, path };
}

t.test('deliveryCopy: Delivered-To always, X-Original-To only when routing changed the address', async (t) => {
  t.equal(deliveryCopy(Buffer.from('X: 1\r\n\r\nb'), { recipient: 'a@d.test', mailbox: 'a@d.test', rule: 'direct' }).toString(), 'Delivered-To: a@d.test\r\nX: 1\r\n\r\nb');
  t.equal(
    deliveryCopy(Buffer.from('X: 1\r\n\r\nb'), { recipient: 'imap+b.1.2.0123456789abcdef@d.test', mailbox: 'imap@d.test', rule: 'civimail-return-path' }).toString(),
    'Delivered-To: imap@d.test\r\nX-Original-To: imap+b.1.2.0123456789abcdef@d.test\r\nX: 1\r\n\r\nb',
  );
});

t.test('three recipients: three copies, one capture with the routing outcome', async (t) => {
  const { store, delivered, path } = setup();
  const { stored } = await path.accept({ raw, envelope: { mailFrom: 'smtp@demomail.test', rcptTo: ['a@demomail.test', 'imap+x@demomail.test', 'c@example.org'] }, clientAddress: '127.0.0.1', origin: 'submission', authUser: 'smtp@demomail.test', tls: 'TLSv1.3' });
  t.same(delivered.map((d) => d.mailbox), ['a@demomail.test', 'imap@demomail.test', 'c@example.org']);
  t.equal(store.stats().messages, 1);
  t.same(stored.deliveries.map((d) => d.rule), ['direct', 'plus-address', 'direct']);
  t.equal(stored.authUser, 'smtp@demomail.test');
  t.equal(stored.tls, 'TLSv1.3');
  t.equal(stored.summary.subject, 'hello');
});

t.test('GreenMail refuses the second copy: DeliveryError, nothing stored, the rest not attempted', async (t) => {
  const { store, delivered, path } = setup((mailbox) => mailbox === 'b@demomail.test');
  const err = await path.accept({ raw, envelope: { mailFrom: 'smtp@demomail.test', rcptTo: ['a@demomail.test', 'b@demomail.test', 'c@demomail.test'] }, clientAddress: '127.0.0.1', origin: 'smtp' }).catch((e: unknown) => e);
  t.type(err, DeliveryError);
  t.equal((err as DeliveryError).delivered, 1);
  t.same(delivered.map((d) => d.mailbox), ['a@demomail.test'], 'copies already in GreenMail stay there (documented)');
  t.equal(store.stats().messages, 0, 'nothing half-kept in the store');
});

t.test('a simulated hard bounce: generated, routed back to the return path, captured as generated', async (t) => {
  const { store, delivered, path } = setup();
  const returnPath = 'imap+b.7.42.0123456789abcdef@demomail.test';
  const { stored, simulated } = await path.accept({ raw, envelope: { mailFrom: returnPath, rcptTo: ['hard-1@bounce.demomail.test'] }, clientAddress: '127.0.0.1', origin: 'submission' });
  t.same(delivered, [], 'the simulated recipient gets no copy');
  t.same(simulated, [{ kind: 'dsn-hard', recipient: 'hard-1@bounce.demomail.test' }]);
  const generated = await path.simulate(stored, simulated, { retries: 0 });
  t.equal(generated.length, 1);
  t.equal(generated[0]?.origin, 'generated');
  t.same(generated[0]?.generatedFrom, { kind: 'dsn-hard', messageId: stored.id, recipient: 'hard-1@bounce.demomail.test' });
  t.same(delivered.map((d) => [d.mailFrom, d.mailbox]), [['', 'imap@demomail.test']], 'null sender, plus-addressed to the IMAP account');
  t.match(delivered[0]?.copy ?? '', /^Delivered-To: imap@demomail\.test\r\nX-Original-To: imap\+b\.7\.42\.0123456789abcdef@demomail\.test\r\n/);
  t.equal(store.stats().messages, 2);
});

t.test('a generated message that cannot be delivered is retried, then counted as failed; never thrown', async (t) => {
  const { store, path } = setup((mailbox) => mailbox === 'imap@demomail.test');
  const { stored, simulated } = await path.accept({ raw, envelope: { mailFrom: 'imap+b.7.42.0123456789abcdef@demomail.test', rcptTo: ['soft-1@bounce.demomail.test'] }, clientAddress: '127.0.0.1', origin: 'smtp' });
  t.same(await path.simulate(stored, simulated, { retries: 2, retryDelayMs: 1 }), []);
  t.equal(store.stats().messages, 1, 'only the original');
});

/** A recording stream side: each streamed copy's bytes, and how its end should turn out. */
function streamingSetup(outcome: (mailbox: string) => 'sent' | 'not-sent' | 'fails' = () => 'sent', refuse?: (mailbox: string) => boolean) {
  const streamed: { mailbox: string; bytes: string; ended: boolean; aborted: boolean }[] = [];
  const base = setup(refuse, (_mailFrom, mailbox, prefix): StreamedCopy => {
      const copy = { mailbox, bytes: prefix.toString('utf8'), ended: false, aborted: false };
      streamed.push(copy);
      return {
        write: (chunk) => {
          copy.bytes += chunk.toString('utf8');
        },
        end: async () => {
          copy.ended = true;
          const o = outcome(mailbox);
          if (o === 'fails') throw new Error('connection lost after the final dot');
          return o === 'sent' ? { sent: true } : { sent: false, error: new Error('refused before the dot') };
        },
        abort: () => {
          copy.aborted = true;
        },
      };
  });
  return { ...base, streamed };
}

const envelope3 = { mailFrom: 'smtp@demomail.test', rcptTo: ['a@demomail.test', 'imap+x@demomail.test', 'c@example.org'] };
const meta = { envelope: envelope3, clientAddress: '127.0.0.1', origin: 'smtps' as const };

t.test('streamed: every copy gets the prefix and the chunks as they come; finish stores once', async (t) => {
  const { store, delivered, path, streamed } = streamingSetup();
  const tx = path.begin(meta);
  t.same(streamed.map((s) => s.mailbox), ['a@demomail.test', 'imap@demomail.test', 'c@example.org'], 'opened at DATA, before any byte');
  tx.write(raw.subarray(0, 10));
  tx.write(raw.subarray(10));
  const { stored } = await tx.finish(raw);
  t.same(streamed.map((s) => s.bytes), [deliveryCopy(raw, stored.deliveries[0]!), deliveryCopy(raw, stored.deliveries[1]!), deliveryCopy(raw, stored.deliveries[2]!)].map((b) => b.toString('utf8')));
  t.ok(streamed.every((s) => s.ended && !s.aborted));
  t.same(delivered, [], 'nothing delivered whole');
  t.equal(store.stats().messages, 1);
});

t.test('streamed: a copy that failed before its final dot goes out whole', async (t) => {
  const { store, delivered, path, streamed } = streamingSetup((mailbox) => (mailbox === 'imap@demomail.test' ? 'not-sent' : 'sent'));
  const tx = path.begin(meta);
  tx.write(raw);
  await tx.finish(raw);
  t.equal(streamed.length, 3);
  t.same(delivered.map((d) => d.mailbox), ['imap@demomail.test']);
  t.equal(store.stats().messages, 1);
});

t.test('streamed: not sent, and GreenMail refuses the whole copy too → DeliveryError, nothing stored', async (t) => {
  const { store, path } = streamingSetup((mailbox) => (mailbox === 'imap@demomail.test' ? 'not-sent' : 'sent'), (mailbox) => mailbox === 'imap@demomail.test');
  const tx = path.begin(meta);
  tx.write(raw);
  const err = await tx.finish(raw).catch((e: unknown) => e);
  t.type(err, DeliveryError);
  t.equal((err as DeliveryError).delivered, 1);
  t.equal(store.stats().messages, 0);
});

t.test('streamed: a failure after the final dot → DeliveryError, not retried, nothing stored', async (t) => {
  const { store, delivered, path } = streamingSetup((mailbox) => (mailbox === 'a@demomail.test' ? 'fails' : 'sent'));
  const tx = path.begin(meta);
  tx.write(raw);
  const err = await tx.finish(raw).catch((e: unknown) => e);
  t.type(err, DeliveryError);
  t.equal((err as DeliveryError).delivered, 0);
  t.same(delivered, []);
  t.equal(store.stats().messages, 0);
});

t.test('streamed: abort (oversized, client gone) drops every copy; nothing delivered or stored; finish refused afterwards', async (t) => {
  const { store, delivered, path, streamed } = streamingSetup();
  const tx = path.begin(meta);
  tx.write(raw);
  tx.abort();
  t.ok(streamed.every((s) => s.aborted && !s.ended));
  t.same(delivered, []);
  t.equal(store.stats().messages, 0);
  await t.rejects(tx.finish(raw));
});

t.test(`streamed: at most ${MAX_STREAMED_COPIES} copies are streamed, the rest go out whole`, async (t) => {
  const { store, delivered, path, streamed } = streamingSetup();
  const rcptTo = Array.from({ length: MAX_STREAMED_COPIES + 2 }, (_, i) => `r${i}@demomail.test`);
  const tx = path.begin({ ...meta, envelope: { mailFrom: 'smtp@demomail.test', rcptTo } });
  tx.write(raw);
  await tx.finish(raw);
  t.equal(streamed.length, MAX_STREAMED_COPIES);
  t.same(delivered.map((d) => d.mailbox), rcptTo.slice(MAX_STREAMED_COPIES));
  t.equal(store.stats().messages, 1);
});
