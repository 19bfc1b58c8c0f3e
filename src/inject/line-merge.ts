// A line-based three-way merge, so that an injected document keeps the user's own text.
//
// The yaml library re-renders a whole document (it cannot print one node where it stood), and its
// rendering differs from hand-written YAML in small ways: `[a, b]` vs `[ a, b ]`, folded text
// joined, a comment moved after `...`. So `demomail inject` renders the document twice, before
// (`base`) and after (`edited`) the injection, and carries only the difference between the two
// over to the user's `source` text: lines the injection did not touch stay the user's bytes.
// Where the user's formatting and the injection touch the same lines, the injection's rendering
// of that region wins; the caller re-reads the result and falls back to `edited` if it does not
// mean what `edited` means.

/** Each line of `a` → the index of the line of `b` it is matched with (or -1), by a shortest edit script. */
export function matchLines(a: readonly string[], b: readonly string[], maxEdits = 4000): Int32Array | undefined {
  const ids = new Map<string, number>();
  const id = (line: string): number => {
    let n = ids.get(line);
    if (n === undefined) ids.set(line, (n = ids.size));
    return n;
  };
  const x = Int32Array.from(a, id);
  const y = Int32Array.from(b, id);
  const match = new Int32Array(a.length).fill(-1);
  let start = 0;
  while (start < x.length && start < y.length && x[start] === y[start]) match[start] = start++;
  let endA = x.length;
  let endB = y.length;
  while (endA > start && endB > start && x[endA - 1] === y[endB - 1]) match[--endA] = --endB;
  const n = endA - start;
  const m = endB - start;
  if (n === 0 || m === 0) return match;

  // Myers' O(ND) greedy search; `trace[d]` keeps the furthest x of every diagonal after d edits.
  const limit = Math.min(n + m, maxEdits);
  const offset = limit + 1;
  const v = new Int32Array(2 * limit + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= limit; d++) {
    for (let k = -d; k <= d; k += 2) {
      let i = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let j = i - k;
      while (i < n && j < m && x[start + i] === y[start + j]) {
        i++;
        j++;
      }
      v[offset + k] = i;
      if (i >= n && j >= m) {
        trace.push(v.slice(offset - d, offset + d + 1));
        backtrack(trace, n, m, (ai, bj) => (match[start + ai] = start + bj));
        return match;
      }
    }
    trace.push(v.slice(offset - d, offset + d + 1));
  }
  return undefined;
}

function backtrack(trace: readonly Int32Array[], n: number, m: number, matched: (i: number, j: number) => void): void {
  let i = n;
  let j = m;
  for (let d = trace.length - 1; d > 0; d--) {
    const previous = trace[d - 1]!; // diagonals -(d-1)..(d-1)
    const k = i - j;
    const down = k === -d || (k !== d && previous[k - 1 + d - 1]! < previous[k + 1 + d - 1]!);
    const prevK = down ? k + 1 : k - 1;
    const prevI = previous[prevK + d - 1]!;
    const prevJ = prevI - prevK;
    while (i > prevI && j > prevJ) matched(--i, --j);
    i = prevI;
    j = prevJ;
  }
  while (i > 0 && j > 0) matched(--i, --j);
}

/**
 * `source` with the changes that turn `base` into `edited`; undefined when the texts are too
 * different to line up (the caller then uses `edited`). Lines are compared without a trailing
 * `\r`; lines kept from `source` keep theirs, new lines get `eol`.
 */
/**
 * What mergeLines made of `source`: blocks of new lines put between its lines (`at`: the index of
 * the source line they go before; `lines` without line endings), and whether that is all it did
 * (`pure`: every source line kept, in order, none replaced).
 */
export interface MergeEdits {
  insertions: Array<{ at: number; lines: string[] }>;
  pure: boolean;
}

export function mergeLines(
  source: readonly string[],
  base: readonly string[],
  edited: readonly string[],
  eol: '\n' | '\r\n',
  edits: MergeEdits = { insertions: [], pure: true },
): string[] | undefined {
  const plainSource = source.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  const toSource = matchLines(base, plainSource);
  const toEdited = matchLines(base, edited);
  if (!toSource || !toEdited) return undefined;
  const out: string[] = [];
  const newLine = (line: string): string => (eol === '\r\n' ? `${line}\r` : line);
  const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((line, i) => line === b[i]);
  const startsWith = (a: readonly string[], b: readonly string[]): boolean => a.length > b.length && b.every((line, i) => line === a[i]);
  const endsWith = (a: readonly string[], b: readonly string[]): boolean => a.length > b.length && b.every((line, i) => line === a[a.length - b.length + i]);
  // Walk the lines of `base` that survive on both sides; between two of them, each side has a
  // chunk: the user's, unless the injection changed it. Lines added after or before the whole
  // chunk (the usual case: a folded scalar the library joins, followed by our new entries) go
  // after or before the user's chunk; anything else takes the injection's rendering.
  let s = -1;
  let e = -1;
  let b = -1;
  for (let i = 0; i <= base.length; i++) {
    const atEnd = i === base.length;
    if (!atEnd && (toSource[i]! < 0 || toEdited[i]! < 0)) continue;
    const nextS = atEnd ? source.length : toSource[i]!;
    const nextE = atEnd ? edited.length : toEdited[i]!;
    const baseChunk = base.slice(b + 1, i);
    const editedChunk = edited.slice(e + 1, nextE);
    const sourceChunk = source.slice(s + 1, nextS);
    const insert = (at: number, lines: string[]): void => {
      if (lines.length > 0) edits.insertions.push({ at, lines });
    };
    if (same(editedChunk, baseChunk)) out.push(...sourceChunk);
    else if (startsWith(editedChunk, baseChunk)) {
      const added = editedChunk.slice(baseChunk.length);
      out.push(...sourceChunk, ...added.map(newLine));
      insert(nextS, added);
    } else if (endsWith(editedChunk, baseChunk)) {
      const added = editedChunk.slice(0, -baseChunk.length || undefined);
      out.push(...added.map(newLine), ...sourceChunk);
      insert(s + 1, added);
    } else {
      out.push(...editedChunk.map(newLine));
      if (sourceChunk.length > 0) edits.pure = false;
      else insert(s + 1, editedChunk);
    }
    if (!atEnd) out.push(source[nextS]!);
    s = nextS;
    e = nextE;
    b = i;
  }
  return out;
}
