// SMTP DATA encoding (RFC 5321 §4.5.2) for the copies the gateway writes into GreenMail: a dot that
// starts a line is doubled, bare CR and bare LF become CRLF, and the data ends with `CRLF.CRLF`.
// Byte for byte what nodemailer's DataStream produces (a property test compares them), without a
// Transform stream per copy: the common chunk (CRLF lines, no leading dot) is passed through as is.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_CR = Buffer.from('\r');
const INSERT_DOT = Buffer.from('.');
const START = -1;

/** Encodes one copy's data, chunk by chunk, in order. */
export class DataEncoder {
  /** The last byte of the previous chunk; START before the first (the start of data is a line start). */
  private lastByte = START;

  encode(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    let parts: Buffer[] | undefined;
    let lastPos = 0;
    let prev = this.lastByte;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      let insert: Buffer | undefined;
      // A bare CR becomes CRLF; a dot after it is stuffed too (a receiver that ends lines at a lone
      // CR would otherwise read "\r.\r" as the end of data: SMTP smuggling).
      if (prev === CR && byte !== LF) insert = byte === DOT ? INSERT_LF_DOT : INSERT_LF;
      else if (byte === LF && prev !== CR) insert = INSERT_CR;
      else if (byte === DOT && (prev === LF || prev === START)) insert = INSERT_DOT;
      if (insert) {
        parts ??= [];
        if (i > lastPos) parts.push(chunk.subarray(lastPos, i));
        parts.push(insert);
        lastPos = i;
      }
      prev = byte;
    }
    this.lastByte = prev;
    if (!parts) return chunk;
    if (lastPos < chunk.length) parts.push(chunk.subarray(lastPos));
    return Buffer.concat(parts);
  }

  /** The end of data: `.CRLF` on a line of its own, completing the last line when it is open. */
  terminator(): Buffer {
    if (this.lastByte === LF) return Buffer.from('.\r\n');
    if (this.lastByte === CR) return Buffer.from('\n.\r\n');
    return Buffer.from('\r\n.\r\n');
  }
}
