// The cheap proof that a merged document means what the webhook produces, for the usual case:
// the line merge only put blocks of new lines between the user's lines (line-merge.ts, `pure`).
//
// The trap: the line diff matches lines by their text, so a block can land next to a line that
// reads like the anchor but sits in another YAML context (inside a block scalar, a multi-line
// plain or quoted scalar, a flow collection, a deeper or shallower collection), where it would
// change what the document means. So a block is accepted only where the *original* document's
// nodes (their source ranges) prove it is a whole item of one block collection:
//
// - its insertion point lies between two items of a block collection C (or before the first,
//   or after the last one), outside every item's text: nothing but comment lines (and, after it,
//   blank lines) separates it from the item before and the item after;
// - C's items start at the block's indentation, and C is of the block's kind (`- ` → a list);
//   C and every collection on the way to it are untagged block collections;
// - the next content line after the point is not more indented than the block (it ends the
//   block's nodes exactly as it ended C's item before);
// - the block, with the blank and comment lines that follow it, read alone, is one untagged
//   block collection of that kind at that indentation, without anchors or aliases.
//
// Then the merged text reads as the original with the block's items added to C, the parser state
// around the block being that of the original text at that point. The caller compares that (the
// original's JSON plus the blocks' items at C's path) with the webhook's result; anything else
// (aliases in the document, merge keys or tags on the way, a key C already has) falls back to
// reading the whole merged text again.
import { isAlias, isMap, isNode, isScalar, isSeq, visit, type Document } from 'yaml';
import type { MergeEdits } from './line-merge.js';

/** The block collections of a document, with where each item's text starts and ends. */
export interface Skeleton {
  kind: 'map' | 'seq';
  /** Column of the keys (map) or of the `-` (list). */
  indent: number;
  items: SkeletonItem[];
}

interface SkeletonItem {
  /** Offsets in the document's text: the key (map) or the node after `- ` (list) … */
  start: number;
  /** … to the end of the value, trailing comments excluded. */
  end: number;
  /** The key as a JSON member name; undefined when it is not a plain string key. */
  key: string | undefined;
  /** The value, when it is an untagged block collection. */
  child: Skeleton | undefined;
}

/**
 * The skeleton of a parsed document whose ranges are offsets into `text` plus `base` (the text is
 * the document's own slice of a larger one); offsets in the skeleton are into `text`. Undefined
 * when the document holds an alias (a write through the alias's anchor would show up in two
 * places) or its contents are not a block collection.
 */
export function skeletonOf(doc: Document.Parsed, text: string, base: number): Skeleton | undefined {
  if (text.includes('*')) {
    let aliased = false;
    visit(doc, {
      Alias: () => {
        aliased = true;
        return visit.BREAK;
      },
    });
    if (aliased) return undefined;
  }
  return collection(doc.contents, text, base);
}

function collection(node: unknown, text: string, base: number): Skeleton | undefined {
  if (!isNode(node) || node.tag || (!isMap(node) && !isSeq(node)) || node.flow) return undefined;
  const items: SkeletonItem[] = [];
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = pair.key;
      if (!isScalar(key) || !key.range) return undefined;
      // A merge key (`<<`) makes members that no item shows; a key that is not a string (`1`,
      // `true`) becomes one when read as JSON, which could collide with an added member.
      if (typeof key.value !== 'string') return undefined;
      const value = pair.value;
      const end = isNode(value) && value.range ? value.range[1] : key.range[1];
      items.push({ start: key.range[0] - base, end: end - base, key: key.value, child: collection(value, text, base) });
    }
  } else {
    for (const item of node.items) {
      if (!isNode(item) || !item.range || isAlias(item)) return undefined;
      items.push({ start: item.range[0] - base, end: item.range[1] - base, key: undefined, child: collection(item, text, base) });
    }
  }
  const first = items[0];
  if (!first) return undefined;
  let at = first.start;
  if (isSeq(node)) {
    at--;
    while (text[at] === ' ') at--;
    if (text[at] !== '-') return undefined;
  }
  return { kind: isMap(node) ? 'map' : 'seq', indent: column(text, at), items };
}

function column(text: string, offset: number): number {
  return offset - (offset === 0 ? 0 : text.lastIndexOf('\n', offset - 1) + 1);
}

/** Where a block goes: the collection (by its JSON path), and the index its items take there. */
interface Placement {
  path: Array<string | number>;
  index: number;
  /** How many items the collection has in the original. */
  size: number;
  kind: 'map' | 'seq';
}

/** Only comment lines, each ended by a newline (the text between an item's end and the point may start mid-line). */
const BEFORE_POINT = /^(?:[ \t]*(?:#[^\n]*)?\n)?(?:[ \t]*#[^\n]*\n)*$/;
const AFTER_POINT = { map: /^(?:[ \t]*(?:#[^\n]*)?\n)* *$/, seq: /^(?:[ \t]*(?:#[^\n]*)?\n)* *- +$/ } as const;

function place(node: Skeleton, text: string, offset: number, indent: number, kind: 'map' | 'seq', path: Array<string | number>): Placement | undefined {
  const { items } = node;
  let j = -1;
  // An item that starts where the point is (a key at column 0) comes after it.
  while (j + 1 < items.length && items[j + 1]!.start < offset) j++;
  const item = items[j];
  const step = (i: number): string | number | undefined => (node.kind === 'seq' ? i : items[i]!.key);
  if (item && offset < item.end) {
    // Inside an item: only into a block collection, never into a scalar or a flow collection.
    const token = step(j);
    return item.child && token !== undefined ? place(item.child, text, offset, indent, kind, [...path, token]) : undefined;
  }
  if (node.indent === indent && node.kind === kind) {
    // The point is on a line of its own, after item j (if any), before item j + 1 (if any).
    if (item && !BEFORE_POINT.test(text.slice(item.end, offset))) return undefined;
    const next = items[j + 1];
    if (next && !AFTER_POINT[kind].test(text.slice(offset, next.start))) return undefined;
    return { path, index: j + 1, size: items.length, kind };
  }
  // After item j at another indentation: the block may continue the collection item j ends with.
  const token = item ? step(j) : undefined;
  return item?.child && token !== undefined ? place(item.child, text, offset, indent, kind, [...path, token]) : undefined;
}

const INDENT = /^ */;
const BLANK_OR_COMMENT = /^[ \t]*(?:#.*)?$/;

export interface Fragment {
  /** The fragment's one document, or undefined when it holds several or has errors. */
  doc: Document.Parsed | undefined;
  /** The fragment read as JSON (as the whole document is read). */
  toJS: (doc: Document.Parsed) => unknown;
}

/**
 * `original` (the document's JSON, which must hold no shared objects; it is changed) with the
 * items of every block the merge inserted, at the collections the original's nodes prove they join;
 * undefined when that cannot be proved for every block (the caller then re-reads the merged text).
 *
 * `lines` are the document's lines without line endings, as given to mergeLines (their last one
 * is the empty string after the final newline, added when the document has none: `finalNewline`),
 * `text` is them joined by `\n`, and the skeleton's offsets are into `text`. `fragments` keeps
 * what blocks read as (or undefined), to be shared by the documents of one file.
 */
export function withInsertions(
  original: unknown,
  skeleton: Skeleton,
  lines: readonly string[],
  text: string,
  finalNewline: boolean,
  edits: MergeEdits,
  read: (fragment: string) => Fragment,
  fragments: Map<string, unknown> = new Map(),
): unknown {
  if (!edits.pure) return undefined;
  const starts: number[] = [];
  let offset = 0;
  for (const line of lines) {
    starts.push(offset);
    offset += line.length + 1;
  }
  const planned: Array<{ placement: Placement; items: unknown; at: number }> = [];
  for (const { at, lines: block } of edits.insertions) {
    // The last line is the empty string after the final newline: nothing goes after it.
    if (at < 0 || at >= lines.length) return undefined;
    const runs = runsOf(block);
    if (runs === undefined) return undefined;
    // The blank and comment lines after the point follow the block in the merged text; the
    // next content line must end the block's nodes (and so be no more indented than its end).
    let next = at;
    while (next < lines.length - 1 && BLANK_OR_COMMENT.test(lines[next]!)) next++;
    const last = runs[runs.length - 1]!;
    if (next < lines.length - 1 && indentOf(lines[next]!) > last.indent) return undefined;
    // A block that runs to the end of a text without a final newline: not worth the thought.
    if (next === lines.length - 1 && !finalNewline) return undefined;
    for (const run of runs) {
      const placement = place(skeleton, text, starts[at]!, run.indent, run.kind, []);
      // A run followed by a less indented one ends the collection it joins there: that
      // collection must have no item after the point (the next run's collection holds it).
      if (!placement || (run !== last && placement.index !== placement.size)) return undefined;
      const fragment = `${[...run.lines, ...(run === last ? lines.slice(at, next) : [])].join('\n')}\n`;
      // The same block (our volume, init container, variables) goes into many documents alike.
      const key = `${run.kind} ${run.indent}\n${fragment}`;
      if (!fragments.has(key)) fragments.set(key, fragmentItems(read(fragment), fragment, run.kind, run.indent));
      const items = fragments.get(key);
      if (items === undefined) return undefined;
      planned.push({ placement, items, at });
    }
  }
  // From the last point up: an insertion never moves the items a path before it goes through
  // (runs at one point go into nested collections, each after the item the next one's path takes).
  planned.sort((a, b) => b.at - a.at);
  for (const { placement, items } of planned) {
    let target: unknown = original;
    for (const token of placement.path) {
      if (typeof token === 'number') target = Array.isArray(target) ? target[token] : undefined;
      else target = isRecord(target) && Object.hasOwn(target, token) ? target[token] : undefined;
    }
    if (placement.kind === 'seq') {
      if (!Array.isArray(target) || !Array.isArray(items) || placement.index > target.length) return undefined;
      target.splice(placement.index, 0, ...(structuredClone(items) as unknown[]));
    } else {
      if (!isRecord(target) || !isRecord(items)) return undefined;
      for (const [key, value] of Object.entries(structuredClone(items))) {
        if (key === '__proto__' || Object.hasOwn(target, key)) return undefined;
        target[key] = value;
      }
    }
  }
  return original;
}

interface Run {
  indent: number;
  kind: 'map' | 'seq';
  lines: string[];
}

/**
 * A block cut where a content line is less indented than the run it is in: each run holds items
 * of one collection, and each next run's collection holds the one before (the library renders
 * the members the patch adds to a container, then those it adds to the pod spec, at one point).
 */
function runsOf(block: readonly string[]): Run[] | undefined {
  const runs: Run[] = [];
  let pending: string[] = [];
  for (const line of block) {
    const current = runs[runs.length - 1];
    if (BLANK_OR_COMMENT.test(line)) {
      (current?.lines ?? pending).push(line);
      continue;
    }
    if (/^ *\t/.test(line)) return undefined;
    const indent = indentOf(line);
    if (current && indent >= current.indent) {
      current.lines.push(line);
      continue;
    }
    runs.push({ indent, kind: /^ *-(?: |$)/.test(line) ? 'seq' : 'map', lines: [...pending, line] });
    pending = [];
  }
  return runs.length > 0 && pending.length === 0 ? runs : undefined;
}

function indentOf(line: string): number {
  return INDENT.exec(line)![0].length;
}

/** The JSON of a fragment that is exactly one untagged block collection of `kind` at `indent`, without anchors or aliases. */
function fragmentItems({ doc, toJS }: Fragment, text: string, kind: 'map' | 'seq', indent: number): unknown {
  if (!doc) return undefined;
  const contents = doc.contents;
  const ofKind = kind === 'map' ? isMap(contents) : isSeq(contents);
  if (!ofKind || !(isMap(contents) || isSeq(contents)) || contents.tag || contents.flow) return undefined;
  let shared = false;
  visit(doc, {
    Node: (_key, node) => {
      if (isAlias(node) || node.anchor) {
        shared = true;
        return visit.BREAK;
      }
      return undefined;
    },
    Pair: (_key, pair) => {
      if (isScalar(pair.key) && typeof pair.key.value === 'symbol') {
        shared = true;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  if (shared) return undefined;
  const skeleton = collection(contents, text, 0);
  if (skeleton?.kind !== kind || skeleton.indent !== indent) return undefined;
  try {
    return toJS(doc);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
