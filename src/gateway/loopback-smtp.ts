// A minimal SMTP client for the one hop it serves: the gateway into GreenMail's plain SMTP on
// 127.0.0.1 inside the pod (no TLS, no AUTH, no extensions). One command per write, each answer
// awaited: GreenMail 2.1.7 has no PIPELINING, and pipelined commands wait for our delayed ACK (40 ms,
// `src/gateway/README.md`, "Not pipelined"). It replaced nodemailer's SMTPConnection on this hop
// because that costs about twice the CPU per copy here (its Transform stream per copy, a write per
// piece of data); measured in `src/gateway/README.md`, "Performance".
import { connect, type Socket } from 'node:net';

export interface SmtpReply {
  code: number;
  /** Every line of the reply, joined by a space, codes removed. */
  text: string;
}

/** GreenMail answered a command with a code we did not expect. */
export class SmtpReplyError extends Error {
  override name = 'SmtpReplyError';
  constructor(
    readonly command: string,
    readonly reply: SmtpReply,
  ) {
    super(`GreenMail answered ${command} with ${reply.code} ${reply.text}`);
  }
}

export interface LoopbackSmtpOptions {
  host: string;
  port: number;
  /** Name given in EHLO. */
  name: string;
  connectTimeoutMs: number;
  /** The connection is closed when it has been idle this long (also while awaiting an answer). */
  idleTimeoutMs: number;
}

/** A reply line that ends a reply: three digits, then a space or nothing (`250-` lines continue it). */
const LAST_LINE = /^\d{3}(?: |$)/;

export class LoopbackSmtpConnection {
  private received = '';
  private lines: string[] = [];
  private waiter: { resolve: (reply: SmtpReply) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly closeListeners: ((err: Error) => void)[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection to GreenMail closed')));
  }

  /** Connects, reads the greeting, says EHLO. */
  static async open(options: LoopbackSmtpOptions): Promise<LoopbackSmtpConnection> {
    const socket = connect({ host: options.host, port: options.port });
    const connection = new LoopbackSmtpConnection(socket);
    const timer = setTimeout(() => connection.fail(new Error(`no connection to GreenMail at ${options.host}:${options.port} within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
    try {
      await connection.expect('greeting', [220]);
    } finally {
      clearTimeout(timer);
    }
    socket.setTimeout(options.idleTimeoutMs, () => connection.fail(new Error(`GreenMail connection idle for ${options.idleTimeoutMs} ms`)));
    await connection.command(`EHLO ${options.name}`, [250]);
    return connection;
  }

  get destroyed(): boolean {
    return this.failure !== undefined;
  }

  /** Called once, when the connection fails or closes (for whatever reason, `close()` included). */
  onClose(listener: (err: Error) => void): void {
    if (this.failure) listener(this.failure);
    else this.closeListeners.push(listener);
  }

  /** Writes one command line and awaits its answer; any other code than `accepted` rejects. */
  command(line: string, accepted: number[]): Promise<SmtpReply> {
    const name = line.split(' ', 1)[0] ?? line;
    const reply = this.expect(name, accepted);
    if (!this.failure) this.socket.write(`${line}\r\n`);
    return reply;
  }

  /** Writes bytes that get no answer of their own (message data): several pieces in one `writev`, no copy. */
  write(pieces: readonly Buffer[]): void {
    if (this.failure || pieces.length === 0) return;
    this.socket.cork();
    for (const piece of pieces) this.socket.write(piece);
    this.socket.uncork();
  }

  /** Awaits the next reply (e.g. the one to the end of data). */
  expect(name: string, accepted: number[]): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiter) return Promise.reject(new Error(`GreenMail connection misused: ${name} while a reply is awaited`));
    return new Promise<SmtpReply>((resolve, reject) => {
      this.waiter = {
        resolve: (reply) => (accepted.includes(reply.code) ? resolve(reply) : reject(new SmtpReplyError(name, reply))),
        reject,
      };
    });
  }

  /** Closes at once. Before the final dot, GreenMail then discards the message in progress. */
  close(): void {
    this.fail(new Error('connection to GreenMail closed by the gateway'));
  }

  /** A polite end for an idle connection. */
  quit(): void {
    if (this.failure) return;
    this.socket.end('QUIT\r\n');
    this.fail(new Error('connection to GreenMail quit'), false);
  }

  private onData(chunk: Buffer): void {
    this.received += chunk.toString('latin1');
    for (let end = this.received.indexOf('\n'); end >= 0; end = this.received.indexOf('\n')) {
      const line = this.received.slice(0, end).replace(/\r$/, '');
      this.received = this.received.slice(end + 1);
      this.lines.push(line);
      if (!LAST_LINE.test(line)) continue;
      const reply = { code: Number(line.slice(0, 3)), text: this.lines.map((l) => l.slice(4)).join(' ') };
      this.lines = [];
      const waiter = this.waiter;
      this.waiter = undefined;
      if (!waiter) return this.fail(new Error(`GreenMail sent a reply nobody asked for: ${line}`));
      waiter.resolve(reply);
    }
    // A reply line never gets this long: something else is talking on this port.
    if (this.received.length > 64 * 1024) this.fail(new Error('GreenMail sent a line of over 64 KiB'));
  }

  private fail(err: Error, destroy = true): void {
    if (this.failure) return;
    this.failure = err;
    if (destroy) this.socket.destroy();
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(err);
    for (const listener of this.closeListeners.splice(0)) listener(err);
  }
}
