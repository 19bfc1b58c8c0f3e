// Delivery into GreenMail's SMTP on 127.0.0.1 (plain, no auth: it listens on loopback only, inside
// the pod). One SMTP transaction per copy, because each copy carries its own Delivered-To header.
//
// A copy is streamed into GreenMail while the client is still sending (accept.ts opens it when the
// client's DATA starts): GreenMail 2.1.7 has no PIPELINING, so MAIL, RCPT and DATA are three round
// trips on a busy JVM, and they now happen during the client's upload instead of after it. The
// connections are our own minimal client (`loopback-smtp.ts`) in a small pool: nodemailer's
// SMTPConnection, used before, cost about twice the CPU per copy on this hop, and its pooled transport
// more again (`src/gateway/README.md`, "Performance").
import { DataEncoder } from './dot-stuffing.js';
import { LoopbackSmtpConnection } from './loopback-smtp.js';
import type { Delivery } from './store.js';

/** Puts one copy into one GreenMail mailbox; rejects when GreenMail refuses or is unreachable. */
export type DeliverFn = (mailFrom: string, mailbox: string, copy: Buffer) => Promise<void>;

/**
 * One copy on its way into GreenMail while the message is still arriving: `write` the message's
 * bytes as they come (after the prefix given at the start), then `end` once, or `abort`.
 */
export interface StreamedCopy {
  write(chunk: Buffer): void;
  /**
   * Sends the final dot and waits for GreenMail's answer. `{ sent: true }`: the copy is in the mailbox.
   * `{ sent: false }`: the transaction failed before the final dot (a refused envelope, a lost or
   * timed-out connection), so GreenMail discarded whatever it had: deliver the copy again from the
   * buffer. Rejects when it failed after the final dot (GreenMail may or may not have it).
   */
  end(): Promise<CopyOutcome>;
  /** Drops the copy: the connection is closed before the final dot and GreenMail discards it. */
  abort(): void;
}

export type CopyOutcome = { sent: true } | { sent: false; error: Error };

/** Opens a streamed copy, or returns undefined when no connection is to spare (deliver it from the buffer). */
export type StreamFn = (mailFrom: string, mailbox: string, prefix: Buffer) => StreamedCopy | undefined;

export interface GreenmailDeliverer {
  deliver: DeliverFn;
  stream: StreamFn;
  close(): void;
}

/** `Delivered-To:` always, `X-Original-To:` when routing changed the address (plus-address, CiviMail return path). Pure. */
export function deliveryPrefix(delivery: Delivery): Buffer {
  const lines = [`Delivered-To: ${delivery.mailbox}`];
  if (delivery.recipient.toLowerCase() !== delivery.mailbox.toLowerCase()) lines.push(`X-Original-To: ${delivery.recipient}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8');
}

/** The bytes delivered to one mailbox: the prefix (`deliveryPrefix`), then the message unchanged. Pure. */
export function deliveryCopy(raw: Buffer, delivery: Delivery): Buffer {
  return Buffer.concat([deliveryPrefix(delivery), raw]);
}

interface PoolOptions {
  host: string;
  port: number;
  /** Open connections at most (idle + busy). */
  maxConnections: number;
  timeoutMs: number;
}

/** Kept-open connections to GreenMail. A connection that failed or was aborted is closed, never reused. */
class ConnectionPool {
  private readonly idle: LoopbackSmtpConnection[] = [];
  private open = 0;
  private readonly waiting: ((connection: Promise<LoopbackSmtpConnection>) => void)[] = [];
  private closed = false;

  constructor(private readonly options: PoolOptions) {}

  /** An idle connection or a new one, without waiting for a busy one; undefined when too many are open. */
  tryAcquire(headroom: number): { connection: Promise<LoopbackSmtpConnection>; reused: boolean } | undefined {
    const idle = this.idle.pop();
    if (idle) return { connection: Promise.resolve(idle), reused: true };
    if (this.closed || this.open >= this.options.maxConnections - headroom) return undefined;
    return { connection: this.connect(), reused: false };
  }

  /** Waits for a connection when all are busy. `fresh`: a new one (after a reused one turned out dead). */
  acquire(fresh = false): { connection: Promise<LoopbackSmtpConnection>; reused: boolean } {
    if (this.closed) return { connection: Promise.reject(new Error('delivery pool closed')), reused: false };
    if (fresh) {
      // A reused connection was found dead: the others are likely dead too (GreenMail restarted).
      for (const c of this.idle.splice(0)) c.close();
      return { connection: this.connect(), reused: false };
    }
    const now = this.tryAcquire(0);
    if (now) return now;
    return { connection: new Promise<Promise<LoopbackSmtpConnection>>((resolve) => this.waiting.push(resolve)).then((c) => c), reused: true };
  }

  /** Back to the pool after a completed transaction. */
  release(connection: LoopbackSmtpConnection): void {
    if (this.closed || connection.destroyed) return;
    const next = this.waiting.shift();
    if (next) return next(Promise.resolve(connection));
    this.idle.push(connection);
  }

  /** Closes a connection mid-transaction (before the final dot GreenMail then discards the copy). */
  discard(connection: LoopbackSmtpConnection): void {
    connection.close();
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.quit();
    for (const w of this.waiting.splice(0)) w(Promise.reject(new Error('delivery pool closed')));
  }

  private connect(): Promise<LoopbackSmtpConnection> {
    const { host, port, timeoutMs } = this.options;
    this.open++;
    const opening = LoopbackSmtpConnection.open({ host, port, name: 'demomail-gateway', connectTimeoutMs: Math.min(timeoutMs, 5_000), idleTimeoutMs: timeoutMs });
    const gone = () => {
      this.open--;
      // A waiting delivery gets a new connection in place of this one.
      const next = this.closed ? undefined : this.waiting.shift();
      if (next) next(this.connect());
    };
    opening.then(
      (connection) =>
        connection.onClose(() => {
          const i = this.idle.indexOf(connection);
          if (i >= 0) this.idle.splice(i, 1);
          gone();
        }),
      gone,
    );
    return opening;
  }
}

/** Data held back for the final dot until this much has collected: then all but the newest chunk goes out. */
const FLUSH_BYTES = 64 * 1024;

/**
 * One transaction on a connection being acquired. The data is encoded (dot-stuffing) as it comes and
 * held: until GreenMail has answered DATA, and after that until 64 KiB have collected (then all but the
 * newest chunk goes out), so a message of up to 64 KiB reaches GreenMail in one write with its final
 * dot (one write and one wake-up of GreenMail's thread per copy, instead of one per chunk).
 */
function transaction(
  pool: ConnectionPool,
  lease: { connection: Promise<LoopbackSmtpConnection>; reused: boolean },
  envelope: { from: string; to: string },
  prefix: Buffer,
): StreamedCopy & { reused: boolean } {
  const encoder = new DataEncoder();
  let held: Buffer[] = [encoder.encode(prefix)];
  let heldBytes = held[0]?.length ?? 0;
  /** Writes all held chunks but the newest once enough has collected. */
  const flush = (c: LoopbackSmtpConnection) => {
    if (heldBytes < FLUSH_BYTES || held.length < 2) return;
    const newest = held.pop() as Buffer;
    c.write(held);
    held = [newest];
    heldBytes = newest.length;
  };
  let connection: LoopbackSmtpConnection | undefined;
  let dataOpen = false;
  let ended = false;
  let aborted = false;
  let settled = false;
  let dotWritten = false;
  let resolveOutcome!: (value: CopyOutcome) => void;
  let rejectOutcome!: (err: Error) => void;
  const outcome = new Promise<CopyOutcome>((resolve, reject) => {
    resolveOutcome = resolve;
    rejectOutcome = reject;
  });
  outcome.catch(() => {}); // awaited through end(); an aborted or unended copy must not be unhandled
  const fail = (err: Error) => {
    if (connection) pool.discard(connection);
    if (settled) return;
    settled = true;
    // Until the final dot is written GreenMail has nothing of this copy; after it, it may have it.
    if (dotWritten) rejectOutcome(err);
    else resolveOutcome({ sent: false, error: err });
  };
  const finish = async (c: LoopbackSmtpConnection) => {
    // A connection lost while the client was still sending: GreenMail dropped the copy.
    if (c.destroyed) return fail(new Error('connection to GreenMail lost before the end of data'));
    held.push(encoder.terminator());
    c.write(held);
    held = [];
    heldBytes = 0;
    dotWritten = true;
    await c.expect('end of data', [250]);
    if (settled) return;
    settled = true;
    pool.release(c);
    resolveOutcome({ sent: true });
  };
  lease.connection.then(
    async (c) => {
      connection = c;
      if (aborted) return pool.release(c); // nothing was sent on it yet
      try {
        await c.command(`MAIL FROM:<${envelope.from}>`, [250]);
        await c.command(`RCPT TO:<${envelope.to}>`, [250, 251]);
        await c.command('DATA', [354]);
        if (settled) return;
        dataOpen = true;
        if (ended) return await finish(c);
        flush(c);
      } catch (err) {
        fail(err as Error);
      }
    },
    (err: Error) => fail(err),
  );
  return {
    reused: lease.reused,
    write(chunk) {
      if (aborted || settled || ended) return;
      const encoded = encoder.encode(chunk);
      held.push(encoded);
      heldBytes += encoded.length;
      if (dataOpen && connection) flush(connection);
    },
    end() {
      if (!settled && !aborted && !ended) {
        ended = true;
        if (dataOpen && connection) finish(connection).catch((err: Error) => fail(err));
      }
      return outcome;
    },
    abort() {
      if (aborted || settled) return;
      aborted = true;
      settled = true;
      resolveOutcome({ sent: false, error: new Error('aborted') });
      // Closed before the final dot: GreenMail discards the partial copy (checked against 2.1.7).
      if (connection) pool.discard(connection);
    },
  };
}

/**
 * The delivery side: streamed copies (`stream`) on spare connections, and whole copies (`deliver`,
 * for copies that did not get a connection to stream on, and for generated mail). A whole copy that
 * fails on a reused connection before any of it was sent (GreenMail restarted since) is tried once
 * more on a new connection.
 */
export function greenmailDeliverer(options: {
  host: string;
  port: number;
  /**
   * Envelope sender used towards GreenMail for mail from the null sender `<>` (DSNs, auto-replies,
   * a client's own bounces): GreenMail 2.1.7 answers `MAIL FROM:<>` with an error. Only the hop into
   * GreenMail changes; the capture keeps the real, empty sender.
   */
  nullSender: string;
  maxConnections?: number;
  timeoutMs?: number;
}): GreenmailDeliverer {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const maxConnections = options.maxConnections ?? 16;
  const pool = new ConnectionPool({ host: options.host, port: options.port, maxConnections, timeoutMs });
  const envelope = (mailFrom: string, mailbox: string) => ({ from: mailFrom === '' ? options.nullSender : mailFrom, to: mailbox });
  return {
    stream: (mailFrom, mailbox, prefix) => {
      // Two connections are never taken by a streamed copy: kept for whole copies (and generated
      // mail), so clients that send slowly cannot hold every connection.
      const lease = pool.tryAcquire(2);
      return lease ? transaction(pool, lease, envelope(mailFrom, mailbox), prefix) : undefined;
    },
    deliver: async (mailFrom, mailbox, copy) => {
      for (let attempt = 0; ; attempt++) {
        const copyTransaction = transaction(pool, pool.acquire(attempt > 0), envelope(mailFrom, mailbox), copy);
        const result = await copyTransaction.end();
        if (result.sent) return;
        if (attempt > 0 || !copyTransaction.reused) throw result.error;
      }
    },
    close: () => pool.close(),
  };
}
