// planInjection's JSON Patch, applied to a YAML Document instead of plain objects, so that every
// node the patch does not touch keeps its comments, anchors, quoting and flow style.
//
// The trap is YAML's sharing: `volumeMounts: *mounts` (or `<<: *base`) makes two containers read
// one node. The ops are planned for each container separately (as the webhook sees them, on
// JSON where nothing is shared), so each write must land in a node only that container reads.
// Before any write passes through a node, the node is made private: an alias on the way is
// replaced by a copy of what it points to, and an anchored node that aliases elsewhere still
// read gets those aliases replaced by copies of it (taken before it changes). Aliases no write
// passes through stay aliases.
import type { Operation } from 'fast-json-patch';
import { isAlias, isMap, isNode, isScalar, isSeq, Pair, Scalar, visit, type Document, type Node, type YAMLMap, type YAMLSeq } from 'yaml';

/** Thrown for a path or op the document cannot take; the caller falls back to rendering the patched JSON. */
export class DocumentPatchError extends Error {
  override name = 'DocumentPatchError';
}

export function applyPatchToDocument(doc: Document, ops: readonly Operation[]): void {
  // Anchors some alias still reads: only writes through these need a walk over the document.
  const aliased = new Set<string>();
  visit(doc, { Alias: (_key, alias) => void aliased.add(alias.source) });
  const writableAt = (doc: Document, tokens: readonly string[]): Node => writableNodeAt(doc, tokens, aliased);
  for (const op of ops) {
    const tokens = pointerTokens(op.path);
    const last = tokens.pop();
    if (last === undefined) throw new DocumentPatchError(`cannot ${op.op} the whole document`);
    const parent = writableAt(doc, tokens);
    if (op.op === 'add' || op.op === 'replace') {
      const node = doc.createNode(op.value, { aliasDuplicateObjects: false }) as Node;
      if (op.op === 'add') insert(parent, last, node, op.path);
      else setExisting(parent, last, node, op.path);
    } else if (op.op === 'move') {
      const fromTokens = pointerTokens(op.from);
      const fromLast = fromTokens.pop();
      if (fromLast === undefined) throw new DocumentPatchError('cannot move the whole document');
      const node = removeAt(writableAt(doc, fromTokens), fromLast, op.from);
      insert(writableAt(doc, tokens), last, node, op.path);
    } else {
      throw new DocumentPatchError(`op ${op.op} is not supported on YAML documents`);
    }
  }
}

/** RFC 6901 tokens of a JSON pointer. */
function pointerTokens(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The node at `tokens`, made private on the way (see the top of this file). */
function writableNodeAt(doc: Document, tokens: readonly string[], aliased: Set<string>): Node {
  let node: unknown = doc.contents;
  if (!isNode(node)) throw new DocumentPatchError('the document is empty');
  unshare(doc, node, aliased);
  for (const token of tokens) node = writableChild(doc, node as Node, token, aliased);
  return node as Node;
}

function writableChild(doc: Document, parent: Node, token: string, aliased: Set<string>): Node {
  let child: unknown;
  if (isMap(parent)) {
    let pair = ownPair(parent, token);
    if (pair === undefined) {
      // Only inherited through `<<: *base`: an own key with a copy overrides the merged one.
      const inherited = mergedValue(doc, parent, token);
      if (inherited === undefined) throw new DocumentPatchError(`no key "${token}"`);
      pair = new Pair(new Scalar(token), privateCopy(inherited));
      parent.items.push(pair);
    }
    if (isAlias(pair.value)) pair.value = privateCopy(resolved(doc, pair.value));
    child = pair.value;
  } else if (isSeq(parent)) {
    const index = seqIndex(parent, token, false);
    if (isAlias(parent.items[index])) parent.items[index] = privateCopy(resolved(doc, parent.items[index]));
    child = parent.items[index];
  }
  if (!isNode(child)) throw new DocumentPatchError(`cannot walk into "${token}"`);
  unshare(doc, child, aliased);
  return child;
}

/**
 * Aliases elsewhere that read `node` get a copy of it as it is now, before a write changes it.
 * Copies only hold aliases to anchors already in `aliased`, so the set only ever shrinks.
 */
function unshare(doc: Document, node: Node, aliased: Set<string>): void {
  const anchor = node.anchor;
  if (!anchor || !aliased.has(anchor)) return;
  aliased.delete(anchor);
  visit(doc, {
    Alias: (key, alias) => (key !== 'key' && alias.source === anchor ? privateCopy(node) : undefined),
  });
}

/** A deep copy without anchors: an anchor written twice would re-bind later aliases to the copy. */
function privateCopy(node: Node): Node {
  const copy = node.clone() as Node;
  visit(copy, {
    Node: (_key, n) => {
      if (isAlias(n)) return;
      delete n.anchor;
    },
  });
  delete copy.anchor;
  return copy;
}

function resolved(doc: Document, alias: unknown): Node {
  const target = isAlias(alias) ? alias.resolve(doc) : undefined;
  if (target === undefined) throw new DocumentPatchError('an alias points nowhere');
  return target;
}

function ownPair(map: YAMLMap, key: string): Pair | undefined {
  return map.items.find((pair) => keyString(pair.key) === key) as Pair | undefined;
}

function keyString(key: unknown): string | undefined {
  // The merge key `<<` is parsed to a Symbol.
  if (isScalar(key)) return typeof key.value === 'symbol' ? key.value.description : String(key.value);
  return typeof key === 'string' ? key : undefined;
}

/** The value `key` gets from the map's `<<` merge keys (first source wins, as in YAML 1.1). */
function mergedValue(doc: Document, map: YAMLMap, key: string): Node | undefined {
  for (const pair of map.items) {
    if (keyString(pair.key) !== '<<') continue;
    const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
    for (const source of sources) {
      const target = isAlias(source) ? source.resolve(doc) : source;
      if (!isMap(target)) continue;
      const own = ownPair(target, key);
      if (own !== undefined) return isAlias(own.value) ? resolved(doc, own.value) : isNode(own.value) ? own.value : undefined;
      const deeper = mergedValue(doc, target, key);
      if (deeper !== undefined) return deeper;
    }
  }
  return undefined;
}

function seqIndex(seq: YAMLSeq, token: string, forInsert: boolean): number {
  if (token === '-' && forInsert) return seq.items.length;
  const index = /^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : NaN;
  if (!(index <= seq.items.length - (forInsert ? 0 : 1))) throw new DocumentPatchError(`no index ${token} in a list of ${seq.items.length}`);
  return index;
}

function insert(parent: Node, token: string, node: Node, path: string): void {
  if (isSeq(parent)) {
    parent.items.splice(seqIndex(parent, token, true), 0, node);
  } else if (isMap(parent)) {
    const pair = ownPair(parent, token);
    // JSON Patch `add` over an existing member (e.g. `volumes: null`) replaces its value.
    if (pair) pair.value = node;
    else parent.items.push(new Pair(new Scalar(token), node));
  } else {
    throw new DocumentPatchError(`${path}: the parent is not a map or a list`);
  }
}

function setExisting(parent: Node, token: string, node: Node, path: string): void {
  if (isSeq(parent)) {
    parent.items[seqIndex(parent, token, false)] = node;
    return;
  }
  const pair = isMap(parent) ? ownPair(parent, token) : undefined;
  if (pair === undefined) throw new DocumentPatchError(`${path}: nothing to replace`);
  pair.value = node;
}

function removeAt(parent: Node, token: string, path: string): Node {
  if (!isSeq(parent)) throw new DocumentPatchError(`${path}: move only between list items`);
  const [node] = parent.items.splice(seqIndex(parent, token, false), 1);
  if (!isNode(node)) throw new DocumentPatchError(`${path}: not a node`);
  return node;
}
