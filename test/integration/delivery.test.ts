// Delivery into the real GreenMail jar (src/gateway/delivery.ts), through a recording TCP proxy: one
// command per write (never pipelined: see "Not pipelined" in src/gateway/README.md), dot-stuffing,
// streamed copies, the null sender, reused connections and a refused envelope.
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import { greenmailDeliverer } from '../../src/gateway/delivery.js';
import { greenmailFor, renderedMailserver } from '../helpers/greenmail.js';

const { deployment, secrets } = renderedMailserver();

/** A loopback proxy to `port` that keeps every chunk the client side wrote, per connection. */
async function recordingProxy(port: number): Promise<{ port: number; connections: string[][]; close(): Promise<void> }> {
  const connections: string[][] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const chunks: string[] = [];
    connections.push(chunks);
    const upstream = createConnection({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (chunk: Buffer) => {
      chunks.push(chunk.toString('latin1'));
      upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

t.test('delivery into the real GreenMail', async (t) => {
  const greenmail = await greenmailFor(t, deployment, secrets);
  if (!greenmail) return;
  const proxy = await recordingProxy(greenmail.ports.smtp);
  t.teardown(() => proxy.close());
  const deliverer = greenmailDeliverer({ host: '127.0.0.1', port: proxy.port, nullSender: 'mailer-daemon@demomail.test', maxConnections: 4 });
  t.teardown(() => deliverer.close());

  const inbox = async (address: string): Promise<string[]> => {
    const res = await fetch(`http://127.0.0.1:${greenmail.ports.api}/api/user/${encodeURIComponent(address)}/messages/INBOX`);
    return res.ok ? ((await res.json()) as { mimeMessage?: string }[]).map((m) => m.mimeMessage ?? '') : [];
  };
  const message = (subject: string) => Buffer.from(`From: a@demomail.test\r\nTo: b@demomail.test\r\nSubject: ${subject}\r\n\r\nline one\r\n.leading dot\r\n`);
  /** Every chunk the gateway side wrote that starts a transaction. */
  const envelopeWrites = () => proxy.connections.flat().filter((c) => c.includes('MAIL FROM:'));

  await t.test('a whole copy: MAIL, RCPT and DATA one write each, the message in the mailbox', async (t) => {
    await deliverer.deliver('sender@demomail.test', 'whole@demomail.test', message('whole copy'));
    const writes = envelopeWrites();
    t.equal(writes.length, 1, 'one transaction');
    t.match(writes[0], /^MAIL FROM:<sender@demomail\.test>[^\r]*\r\n$/, 'MAIL alone in its write: GreenMail would hold the replies to pipelined commands for our delayed ACK (40 ms)');
    const chunks = proxy.connections.flat();
    t.ok(chunks.includes('RCPT TO:<whole@demomail.test>\r\n') && chunks.includes('DATA\r\n'), 'RCPT and DATA each in a write of its own');
    const got = await inbox('whole@demomail.test');
    t.equal(got.length, 1);
    t.match(got[0], /Subject: whole copy/);
    t.match(got[0], /\r\n\.leading dot/, 'dot-stuffed on the way, unstuffed by GreenMail: the line is unchanged');
  });

  await t.test('copies on a reused connection stay in step', async (t) => {
    const before = proxy.connections.length;
    for (const n of [1, 2, 3]) await deliverer.deliver('', 'reused@demomail.test', message(`reused ${n}`));
    t.equal(proxy.connections.length, before, 'no new connection for the next copies');
    const got = await inbox('reused@demomail.test');
    t.same(
      got.map((m) => /Subject: (.*)\r\n/.exec(m)?.[1]),
      ['reused 1', 'reused 2', 'reused 3'],
      'every copy once, in order',
    );
    t.ok(
      envelopeWrites().some((w) => w.startsWith('MAIL FROM:<mailer-daemon@demomail.test>')),
      'the null sender goes out as the configured nullSender',
    );
  });

  await t.test('a refused envelope fails the copy; the next copy goes through', async (t) => {
    // Without a nullSender, MAIL FROM:<> reaches GreenMail, which answers 250 to it and then 503 to RCPT.
    const strict = greenmailDeliverer({ host: '127.0.0.1', port: proxy.port, nullSender: '', maxConnections: 3 });
    t.teardown(() => strict.close());
    await t.rejects(strict.deliver('', 'refused@demomail.test', message('refused')), /503/);
    await strict.deliver('sender@demomail.test', 'refused@demomail.test', message('after the refusal'));
    const got = await inbox('refused@demomail.test');
    t.same(
      got.map((m) => /Subject: (.*)\r\n/.exec(m)?.[1]),
      ['after the refusal'],
      'only the copy that was accepted',
    );
  });

  await t.test('a streamed copy: prefix and chunks, then the final dot', async (t) => {
    const copy = deliverer.stream('sender@demomail.test', 'streamed@demomail.test', Buffer.from('Delivered-To: streamed@demomail.test\r\n'));
    if (!copy) return t.fail('no connection to stream on');
    const raw = message('streamed copy');
    copy.write(raw.subarray(0, 20));
    copy.write(raw.subarray(20));
    t.same(await copy.end(), { sent: true });
    const got = await inbox('streamed@demomail.test');
    t.equal(got.length, 1);
    t.match(got[0], /\nDelivered-To: streamed@demomail\.test\r\nFrom: a@demomail\.test\r\n/, "the prefix, then the message (after GreenMail's Return-Path and Received)");
    t.match(got[0], /Subject: streamed copy/);
  });

  await t.test('a streamed copy under 64 KiB reaches GreenMail in one write, final dot included', async (t) => {
    const copy = deliverer.stream('sender@demomail.test', 'onewrite@demomail.test', Buffer.from('Delivered-To: onewrite@demomail.test\r\n'));
    if (!copy) return t.fail('no connection to stream on');
    const raw = message('one write');
    // Wait until GreenMail has answered DATA, then send the message in three chunks.
    await new Promise((resolve) => setTimeout(resolve, 300));
    copy.write(raw.subarray(0, 10));
    copy.write(raw.subarray(10, 30));
    copy.write(raw.subarray(30));
    t.same(await copy.end(), { sent: true });
    const connection = proxy.connections.find((chunks) => chunks.some((c) => c.includes('RCPT TO:<onewrite@demomail.test>')));
    const afterData = connection?.slice(connection.lastIndexOf('DATA\r\n') + 1) ?? [];
    t.equal(afterData.length, 1, 'one write after DATA');
    t.match(afterData[0], /^Delivered-To: onewrite@demomail\.test\r\nFrom: a@demomail\.test\r\n[\s\S]*\r\n\.\r\n$/, 'prefix, message and final dot together');
    t.equal((await inbox('onewrite@demomail.test')).length, 1);
  });
});
