import fc from 'fast-check';
import t from 'tap';
import { matchLines, mergeLines } from './line-merge.js';

const seed = Number(process.env['FC_SEED'] ?? 20261201);

/** Length of a longest common subsequence, by the textbook table. */
function lcsLength(a: readonly string[], b: readonly string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    let diagonal = 0;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = x === b[j - 1] ? diagonal + 1 : Math.max(row[j]!, row[j - 1]!);
      diagonal = above;
    }
  }
  return row[b.length]!;
}

t.test('matchLines is a longest matching of equal lines, in order', async (t) => {
  const lines = fc.array(fc.constantFrom('a', 'b', 'c', '- name: x', ''), { maxLength: 30 });
  fc.assert(
    fc.property(lines, lines, (a, b) => {
      const match = matchLines(a, b)!;
      let last = -1;
      let count = 0;
      match.forEach((j, i) => {
        if (j < 0) return;
        if (j <= last || a[i] !== b[j]) throw new Error(`bad pair ${i} → ${j}`);
        last = j;
        count++;
      });
      return count === lcsLength(a, b);
    }),
    { numRuns: 500, seed },
  );
  t.equal(matchLines(['a', 'b'], ['c', 'd'], 1), undefined, 'too many edits: undefined, the caller falls back');
});

t.test('mergeLines carries what the injection changed into the user text', async (t) => {
  const source = ['kind: Pod # mine', 'spec:', '  args: [a, b]', '  env:', '  - name: A', ''];
  const base = ['kind: Pod # mine', 'spec:', '  args: [ a, b ]', '  env:', '  - name: A', ''];
  const edited = ['kind: Pod # mine', 'spec:', '  args: [ a, b ]', '  env:', '  - name: A', '  - name: OURS', ''];
  t.same(mergeLines(source, base, edited, '\n'), [...source.slice(0, 5), '  - name: OURS', ''], 'user formatting kept, our line added');
  const crlf = source.map((line) => `${line}\r`);
  t.same(mergeLines(crlf, base, edited, '\r\n'), [...crlf.slice(0, 5), '  - name: OURS\r', '\r'], 'new lines take the line ending');
  const changed = ['kind: Pod # mine', 'spec:', '  args: [ a, b, c ]', '  env:', '  - name: A', ''];
  t.same(mergeLines(source, base, changed, '\n'), [...source.slice(0, 2), '  args: [ a, b, c ]', ...source.slice(3)], 'a line both touched: ours');
  const folded = ['  value: >-', '    one', '    two', '  - name: B', ''];
  t.same(
    mergeLines(folded, ['  value: >-', '    one two', '  - name: B', ''], ['  value: >-', '    one two', '  - name: OURS', '  - name: B', ''], '\n'),
    ['  value: >-', '    one', '    two', '  - name: OURS', '  - name: B', ''],
    'lines added after a region the library renders differently go after the user text',
  );
});
