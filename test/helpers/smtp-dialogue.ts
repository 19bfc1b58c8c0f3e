// A raw SMTP client for tests that speak the protocol line by line (hostile sessions, AUTH before
// STARTTLS): connect, read whole replies (multi-line `250-…` … `250 …`), send commands.
import { connect as netConnect, type Socket } from 'node:net';

export interface Reply {
  code: number;
  lines: string[];
  text: string;
}

export class SmtpDialogue {
  private buffer = '';
  private waiters: (() => void)[] = [];
  closed = false;
  /** Bytes received in total (hostile tests check that the server answered, not what). */
  received = 0;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.received += chunk.length;
      this.buffer += chunk;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static async open(port: number, host = '127.0.0.1'): Promise<SmtpDialogue> {
    const socket = netConnect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new SmtpDialogue(socket);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The next complete reply; rejects after `timeoutMs` or when the connection closed first. */
  async reply(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines: string[] = [];
      let offset = 0;
      for (;;) {
        const end = this.buffer.indexOf('\r\n', offset);
        if (end === -1) break;
        const line = this.buffer.slice(offset, end);
        offset = end + 2;
        lines.push(line);
        if (!/^\d{3}-/.test(line)) {
          this.buffer = this.buffer.slice(offset);
          return { code: Number(line.slice(0, 3)), lines, text: lines.join('\n') };
        }
      }
      if (this.closed) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.buffer.slice(0, 200))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete reply within ${timeoutMs} ms; have ${JSON.stringify(this.buffer.slice(0, 200))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  write(data: string | Buffer): void {
    if (!this.closed) this.socket.write(data);
  }

  async command(line: string, timeoutMs?: number): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  /** Resolves when the server closed the connection (true) or after `timeoutMs` (false). */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closed;
  }

  /** Everything received and not yet parsed as a reply. */
  pending(): string {
    return this.buffer;
  }

  close(): void {
    this.socket.destroy();
  }
}
