import t from 'tap';
import fc from 'fast-check';
import { DataEncoder } from './dot-stuffing.js';

/** The whole data encoded at once, the plain way: every line ending made CRLF, then a dot added to lines starting with one. */
function reference(data: string): string {
  const normalized = data.replace(/\r\n|\r|\n/g, '\r\n');
  const stuffed = normalized.replace(/(^|\r\n)\./g, '$1..');
  return stuffed + (normalized.endsWith('\r\n') ? '.\r\n' : '\r\n.\r\n');
}

function encodeInChunks(data: Buffer, cuts: number[]): string {
  const encoder = new DataEncoder();
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < data.length)].sort((a, b) => a - b)) {
    out.push(encoder.encode(data.subarray(from, cut)));
    from = cut;
  }
  out.push(encoder.encode(data.subarray(from)), encoder.terminator());
  return Buffer.concat(out).toString('latin1');
}

t.test('DataEncoder: table', async (t) => {
  const cases: [string, string, string][] = [
    ['plain CRLF lines pass through', 'a\r\nb\r\n', 'a\r\nb\r\n.\r\n'],
    ['an open last line is closed before the dot', 'a\r\nb', 'a\r\nb\r\n.\r\n'],
    ['a dot at the start of data', '.x\r\n', '..x\r\n.\r\n'],
    ['a dot at the start of a line', 'a\r\n.\r\n..\r\n', 'a\r\n..\r\n...\r\n.\r\n'],
    ['a dot inside a line stays', 'a.b\r\n', 'a.b\r\n.\r\n'],
    ['bare LF becomes CRLF', 'a\nb\n', 'a\r\nb\r\n.\r\n'],
    ['bare CR becomes CRLF, a dot after it is stuffed (no smuggled end of data)', 'a\r.\rb', 'a\r\n..\r\nb\r\n.\r\n'],
    ['empty data', '', '\r\n.\r\n'],
  ];
  for (const [name, input, expected] of cases) t.equal(encodeInChunks(Buffer.from(input, 'latin1'), []), expected, name);
});

t.test('DataEncoder: a line ending split across chunks', async (t) => {
  const data = Buffer.from('a\r\n.b\r.c\n', 'latin1');
  const whole = encodeInChunks(data, []);
  for (let cut = 1; cut < data.length; cut++) t.equal(encodeInChunks(data, [cut]), whole, `cut at ${cut}`);
});

t.test('DataEncoder: any bytes, any chunking, equals the reference', async (t) => {
  // Bytes drawn mostly from the ones that matter (CR, LF, dot) so the interesting cases are frequent.
  const byte = fc.oneof(fc.constantFrom(0x0d, 0x0a, 0x2e), fc.integer({ min: 0, max: 255 }));
  fc.assert(
    fc.property(fc.array(byte, { maxLength: 200 }), fc.array(fc.nat(200), { maxLength: 6 }), (bytes, cuts) => {
      const data = Buffer.from(bytes);
      return encodeInChunks(data, cuts) === reference(data.toString('latin1'));
    }),
    { numRuns: 2000 },
  );
  t.pass('2,000 random inputs and chunkings');
});

t.test('DataEncoder: an unchanged chunk is returned without a copy', async (t) => {
  const chunk = Buffer.from('From: a@b\r\nSubject: x\r\n\r\nbody\r\n');
  t.equal(new DataEncoder().encode(chunk), chunk);
});
