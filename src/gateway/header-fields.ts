// The header block of a message as plain fields: the DSN generator reads the original's (and returns
// its header lines), the accept path its Message-ID for the log line. No MIME decoding beyond UTF-8.

const CRLF = '\r\n';

export interface HeaderBlock {
  /** Lower-cased field name → first value, unfolded, decoded as UTF-8. */
  fields: Map<string, string>;
  /** The header lines as received (CRLF, whole fields, up to `keptBytes`): a DSN's third part. */
  raw: Buffer;
}

/** Reads the header block of any bytes; lines that are not header fields are left out. Pure. */
export function readHeaders(original: Buffer, keptBytes: number): HeaderBlock {
  const candidates = [original.indexOf('\r\n\r\n'), original.indexOf('\n\n')].filter((i) => i >= 0);
  const end = candidates.length > 0 ? Math.min(...candidates) : original.length;
  // latin1 keeps every byte as one character, so the returned headers are byte-exact (UTF-8 included).
  const lines = original.subarray(0, end).toString('latin1').split(/\r?\n/);
  const fields = new Map<string, string>();
  const kept: string[] = [];
  let size = 0;
  let current: { name: string; value: string } | undefined;
  const finish = (): void => {
    if (current && !fields.has(current.name)) fields.set(current.name, Buffer.from(current.value, 'latin1').toString('utf8').trim());
    current = undefined;
  };
  for (const rawLine of lines) {
    const line = rawLine.replace(/[\0\r]/g, '');
    const start = /^([!-9;-~]+):/.exec(line);
    if (start?.[1]) {
      finish();
      current = { name: start[1].toLowerCase(), value: line.slice(start[0].length) };
    } else if (current && /^[ \t]/.test(line)) {
      current.value += line;
    } else {
      finish();
      continue;
    }
    size += line.length + 2;
    if (size <= keptBytes) kept.push(line);
  }
  finish();
  return { fields, raw: Buffer.from(kept.map((l) => l + CRLF).join(''), 'latin1') };
}
