// `demomail inject`: offline injection of manifests (like `istioctl kube-inject`). It finds the
// pod (template) in each object, asks planInjection — the webhook's own function — for the ops,
// applies them to the document's JSON (what the webhook's patch makes of the pod) and to the YAML
// text (comments and formatting kept), and insists that the two agree.
import jsonpatch, { type Operation } from 'fast-json-patch';
import { isDeepStrictEqual } from 'node:util';
import {
  Composer,
  Document,
  isMap,
  isNode,
  Parser,
  type CreateNodeOptions,
  type DocumentOptions,
  type ParseOptions,
  type ScalarTag,
  type SchemaOptions,
  type ToStringOptions,
  type YAMLError,
} from 'yaml';
import { POD_OPT_IN_LABEL, type InjectionSettings } from '../config.js';
import { withInsertions, skeletonOf, type Fragment, type Skeleton } from './insertions.js';
import { mergeLines, type MergeEdits } from './line-merge.js';
import { InjectionRefused, isObject, planInjection, type JsonObject } from './plan.js';
import { applyPatchToDocument, DocumentPatchError } from './yaml-patch.js';

export interface ManifestOptions {
  /** Used for pods/templates without metadata.namespace (default: "default", as kubectl). */
  namespace?: string;
  /** File name for messages ("-" = stdin). */
  source: string;
  /** Receives each warning, prefixed with source and object (e.g. print it on stderr). */
  onWarning?: (message: string) => void;
}

/** Bad YAML or a pod that cannot be injected safely: the message names the file, the object and the reason. */
export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** Where the pod (template) sits in each workload kind. */
const POD_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: [],
  PodTemplate: ['template'],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

/**
 * Read the way the API server (go-yaml, YAML 1.1) reads manifests: `0644` is octal, `yes` is a
 * boolean, but `2024-01-01` and `12:30` stay strings (go-yaml keeps timestamps and sexagesimal
 * numbers as strings in untyped maps; the 1.1 schema of `yaml` would turn them into a Date and 750).
 */
const PARSE_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.1',
  intAsBigInt: true,
  customTags: (tags) =>
    tags.filter((tag) => typeof tag === 'string' || (tag.tag !== 'tag:yaml.org,2002:timestamp' && tag.format !== 'TIME')),
};
/**
 * Our own copy of the timestamp tag, used only to decide quoting on output: the library's shared
 * tag object can be changed by other code in the process (tap-yaml sets its `default` to false),
 * which would silently turn `"2024-06-01"` into a plain scalar.
 */
const TIMESTAMP_LOOKALIKE: ScalarTag = {
  tag: 'tag:yaml.org,2002:timestamp',
  default: true,
  test: /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:t|T|[ \t]+)[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?(?:[ \t]*(?:Z|[-+][012]?[0-9](?::[0-9]{2})?))?)?$/,
  resolve: (source: string) => source,
};
/** Written with the YAML 1.1 schema, so every ambiguous string ("yes", "0644", "12:30", dates) is quoted. */
const OUTPUT_DOCUMENT_OPTIONS: DocumentOptions & SchemaOptions & CreateNodeOptions = {
  version: '1.1',
  aliasDuplicateObjects: false,
  customTags: (tags) => [...tags.filter((tag) => typeof tag === 'string' || tag.tag !== TIMESTAMP_LOOKALIKE.tag), TIMESTAMP_LOOKALIKE],
};
const OUTPUT_OPTIONS: ToStringOptions = { lineWidth: 0 };

/** The objects of a multi-document YAML text, read as the API server reads them (empty documents dropped). */
export function readManifestObjects(text: string, source = '<input>'): unknown[] {
  const objects: unknown[] = [];
  for (const doc of composeDocuments(text)) {
    throwOnYamlError(doc.errors, text, source);
    const object = documentObject(doc, source);
    if (object !== null && object !== undefined) objects.push(object);
  }
  return objects;
}

/**
 * The documents of a multi-document text, each composed only when the caller asks for it, so a
 * large install file never has more than two documents' nodes alive (the one in hand and the one
 * the composer has read ahead). Errors carry offsets only: line numbers are counted when one is
 * reported (`throwOnYamlError`), not for every line of every file.
 */
function* composeDocuments(text: string): Generator<Document.Parsed> {
  yield* new Composer(PARSE_OPTIONS).compose(new Parser().parse(text));
}

/**
 * The plain object of a parsed document. The yaml library reports some problems only here, as plain
 * exceptions (an alias to an anchor that was never set, an alias bomb over maxAliasCount): make them
 * ManifestErrors that name the file like every other YAML error.
 */
function documentObject(doc: Document.Parsed, source: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100, reviver: numberWhereSafe }) as unknown;
  } catch (err) {
    throw new ManifestError(`${source}: invalid YAML: ${(err as Error).message}`);
  }
}

function throwOnYamlError(errors: readonly YAMLError[], text: string, source: string): void {
  const error = errors[0];
  if (!error) return;
  const offset = error.pos[0];
  const where = offset >= 0 && offset <= text.length ? `${source}:${lineAndColumn(text, offset)}` : source;
  throw new ManifestError(`${where}: invalid YAML (${error.code}): ${error.message.replace(/ at line \d+[\s\S]*$/, '')}`);
}

/** `line:column` (both from 1) of an offset, as the library's own pretty errors number them. */
function lineAndColumn(text: string, offset: number): string {
  // lastIndexOf reads a negative start as 0, which would find a newline at offset 0 itself.
  const lineStart = offset === 0 ? 0 : text.lastIndexOf('\n', offset - 1) + 1;
  return `${1 + countLines(text, 0, lineStart)}:${offset - lineStart + 1}`;
}

/**
 * Multi-document YAML in, multi-document YAML out; throws ManifestError(message names source + reason).
 *
 * Byte-stable by construction: each document's slice of the input (its `---`, directives,
 * comments, blank lines and `...`) is copied verbatim unless something in it is injected. An
 * injected document is patched as a YAML Document (yaml-patch.ts) and only the lines the
 * injection changed are merged into its original text (line-merge.ts); the result is re-read
 * and must equal the webhook's result (the JSON Patch applied to the document's JSON).
 */
export function injectManifests(text: string, settings: InjectionSettings, options: ManifestOptions): string {
  const { source } = options;
  const context: Context = { source, settings, defaultNamespace: options.namespace || 'default', onWarning: options.onWarning, fragments: new Map() };
  const out: string[] = [];
  let start = 0;
  let line = 1;
  for (const { doc, last } of withLast(composeDocuments(text))) {
    throwOnYamlError(doc.errors, text, source);
    const end = last ? text.length : doc.range[2];
    const segment = text.slice(start, end);
    const segmentStart = start;
    const docLine = line + countLines(text, start, doc.range[0]);
    line += countLines(text, start, end);
    start = end;
    if (!mayMatter(segment)) {
      out.push(segment);
      continue;
    }
    const object = documentObject(doc, source);
    if (!isObject(object)) {
      out.push(segment);
      continue;
    }
    // Each alias becomes its own copy, as in the JSON the API server (and so the webhook) sees.
    const expected = unshared(object) as JsonObject;
    const ops = injectObject(expected, '', context, `${source}:${docLine}`);
    out.push(ops.length === 0 ? segment : renderInjected(doc, segment, segmentStart, object, ops, expected, `${source}:${docLine}`, context));
  }
  // No document at all (only comments or blank lines): nothing to carry them but the text itself.
  return out.length === 0 ? text : out.join('');
}

/** Each item with whether it is the last one (the last document's slice runs to the end of the text). */
function* withLast<T>(items: Iterable<T>): Generator<{ doc: T; last: boolean }> {
  let held: { value: T } | undefined;
  for (const item of items) {
    if (held) yield { doc: held.value, last: false };
    held = { value: item };
  }
  if (held) yield { doc: held.value, last: true };
}

/**
 * Whether a document's text can make `inject` do anything but copy it: every injection, skip note
 * and refusal needs a `demomail/inject` label, and reading the document as JSON can only fail
 * through an alias (`*`), a merge (`<<`) or a tag (`!`). A key spelled with escapes (`\`) counts
 * too. Conservative on purpose: a false "yes" only costs the full reading.
 */
function mayMatter(segment: string): boolean {
  return segment.includes('demomail/inject') || /[\\*!]|<</.test(segment);
}

interface Context {
  source: string;
  settings: InjectionSettings;
  defaultNamespace: string;
  onWarning: ((message: string) => void) | undefined;
  /** What the blocks inserted into injected documents read as (insertions.ts), by their text. */
  fragments: Map<string, unknown>;
}

/** Injects the object's pod (template) in place; returns the ops applied, with paths from the document root. */
function injectObject(object: JsonObject, pointer: string, context: Context, where: string): Operation[] {
  const kind = typeof object.kind === 'string' ? object.kind : '';
  if (Array.isArray(object.items) && (kind === 'List' || kind.endsWith('List'))) {
    return object.items.flatMap((item, i) =>
      isObject(item) ? injectObject(item, `${pointer}/items/${i}`, context, `${where}: ${kind} items[${i}]`) : [],
    );
  }
  const metadata = isObject(object.metadata) ? object.metadata : {};
  const namespace = (typeof metadata.namespace === 'string' && metadata.namespace) || context.defaultNamespace;
  const name = typeof metadata.name === 'string' && metadata.name !== '' ? metadata.name : String(metadata.generateName ?? '<unnamed>');
  const subject = `${where}: ${kind || '<no kind>'} ${namespace}/${name}`;
  const path = POD_PATHS[kind];
  const target = path?.reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), object);
  if (path === undefined || !isObject(target)) {
    noteUnhandled(object, kind, path !== undefined, subject, context);
    return [];
  }

  let plan;
  try {
    plan = planInjection(target, namespace, context.settings, { requireOptInLabel: true });
  } catch (err) {
    if (err instanceof InjectionRefused) throw new ManifestError(`${subject}: ${kind === 'Pod' ? '' : 'pod template: '}${err.reason}`);
    throw err;
  }
  if (plan.action === 'skip') {
    noteSkipped(object, target, kind, plan.reason, subject, context);
    return [];
  }
  for (const warning of plan.warnings) context.onWarning?.(`${subject}: ${warning}`);
  if (plan.ops.length === 0) return [];
  // In place on our own unshared copy; `mutateDocument: false` would deep-copy through JSON,
  // which cannot carry the BigInts of out-of-range integers.
  jsonpatch.applyPatch(target, plan.ops, true, true);
  const prefix = `${pointer}${path.map((key) => `/${key}`).join('')}`;
  return plan.ops.map((op) => ({ ...op, path: `${prefix}${op.path}`, ...(op.op === 'move' ? { from: `${prefix}${op.from}` } : {}) }) as Operation);
}

/**
 * Why an opt-in does not lead to an injection, on stderr: a GitOps user reads the pipeline log,
 * not the cluster, and a silently unchanged manifest looks like success.
 */
function noteSkipped(object: JsonObject, template: JsonObject, kind: string, reason: string, subject: string, context: Context): void {
  const warn = (message: string): void => context.onWarning?.(`${subject}: ${kind === 'Pod' ? '' : 'pod template: '}${message}`);
  const optIn = labelsOf(template)[POD_OPT_IN_LABEL];
  if (optIn === 'true') warn(`opted in but not injected: ${reason}`);
  else if (optIn === 'false') warn(`not injected: ${reason}`);
  else if (optIn !== undefined) {
    warn(`not injected: label ${POD_OPT_IN_LABEL} is ${describeValue(optIn)}, only the string "true" opts in (write ${POD_OPT_IN_LABEL}: "true")`);
  } else if (kind !== 'Pod' && labelsOf(object)[POD_OPT_IN_LABEL] === 'true') {
    warn(`not injected: label ${POD_OPT_IN_LABEL}=true is on the ${kind} itself; put it on the pod template (${POD_PATHS[kind]!.join('.')}.metadata.labels), which is what the webhook sees`);
  }
}

/** A template we cannot reach (unknown kind, template not a map) that is labelled for injection. */
function noteUnhandled(object: JsonObject, kind: string, known: boolean, subject: string, context: Context): void {
  const template = isObject(object.spec) && isObject(object.spec.template) ? object.spec.template : undefined;
  const labelled = labelsOf(object)[POD_OPT_IN_LABEL] === 'true' || (template !== undefined && labelsOf(template)[POD_OPT_IN_LABEL] === 'true');
  if (!labelled) return;
  const why = known ? 'its pod template is missing or not a map' : `kind ${kind || '(none)'} is not one demomail inject handles (see the README)`;
  context.onWarning?.(`${subject}: opted in but not injected: ${why}; passed through unchanged`);
}

function labelsOf(object: JsonObject): JsonObject {
  const metadata = isObject(object.metadata) ? object.metadata : {};
  return isObject(metadata.labels) ? metadata.labels : {};
}

function describeValue(value: unknown): string {
  return typeof value === 'string' ? `"${value}"` : `${typeof value === 'object' ? JSON.stringify(value) : String(value)} (a ${value === null ? 'null' : typeof value}, not a string)`;
}

/**
 * The injected document's text: the original slice with the injected lines merged in when that
 * reads back as the webhook's result, else the library's rendering of the patched document,
 * else (never seen; a bug in yaml-patch.ts) the patched JSON with a warning.
 */
function renderInjected(
  doc: Document.Parsed,
  segment: string,
  segmentStart: number,
  original: unknown,
  ops: readonly Operation[],
  expected: JsonObject,
  where: string,
  context: Context,
): string {
  const eol = segment.includes('\r\n') ? '\r\n' : '\n';
  const finalNewline = segment.endsWith('\n');
  const withEnding = (text: string): string => {
    const lines = eol === '\r\n' ? text.replace(/\r?\n/g, '\r\n') : text;
    return finalNewline ? lines : lines.replace(/\r?\n$/, '');
  };
  const options = renderOptionsLike(segment);
  // The library keeps a `\r` inside comments it reads from CRLF text: edit an LF copy instead.
  const sourceLines = (finalNewline ? segment : `${segment}\n`).split('\n');
  const plainLines = eol === '\r\n' ? sourceLines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line)) : sourceLines;
  const plainText = eol === '\r\n' ? plainLines.join('\n') : finalNewline ? segment : `${segment}\n`;
  let skeleton: Skeleton | undefined;
  if (eol === '\r\n') {
    const lf = soleDocument(plainText);
    if (lf) [doc, skeleton] = [lf, skeletonOf(lf, plainText, 0)];
  } else {
    skeleton = skeletonOf(doc, plainText, segmentStart);
  }
  doc.setSchema('1.1', OUTPUT_DOCUMENT_OPTIONS);
  const base = doc.toString(options);
  let patched = true;
  try {
    applyPatchToDocument(doc, ops);
  } catch (err) {
    if (!(err instanceof DocumentPatchError)) throw err;
    patched = false;
  }
  if (patched) {
    const edited = doc.toString(options);
    const edits: MergeEdits = { insertions: [], pure: true };
    const merged = mergeLines(sourceLines, base.split('\n'), edited.split('\n'), eol, edits);
    // Only blocks added between the user's lines, each proved (from the original's nodes) to be
    // whole items of the collection the patch adds to: no need to read the whole text again.
    if (merged && skeleton) {
      const read = (fragment: string): Fragment => ({ doc: soleDocument(fragment), toJS: (d) => d.toJS({ maxAliasCount: 100, reviver: numberWhereSafe }) });
      const meaning = withInsertions(unshared(original), skeleton, plainLines, plainText, finalNewline, edits, read, context.fragments);
      if (meaning !== undefined && isDeepStrictEqual(meaning, expected)) return withEnding(merged.join('\n'));
    }
    for (const candidate of [merged?.join('\n'), edited]) {
      if (candidate !== undefined && readsAs(candidate, expected)) return withEnding(candidate);
    }
  }
  context.onWarning?.(`${where}: comments and formatting of this document could not be kept (please report this)`);
  const rendered = new Document(expected, OUTPUT_DOCUMENT_OPTIONS);
  rendered.commentBefore = leadingComment(doc);
  return withEnding(rendered.toString(OUTPUT_OPTIONS));
}

function readsAs(text: string, expected: JsonObject): boolean {
  const doc = soleDocument(text);
  if (!doc) return false;
  try {
    return isDeepStrictEqual(doc.toJS({ maxAliasCount: 100, reviver: numberWhereSafe }), expected);
  } catch {
    return false;
  }
}

/** The one document of a text; undefined if the text holds several or has errors. */
function soleDocument(text: string): Document.Parsed | undefined {
  const docs = [...composeDocuments(text)];
  return docs.length === 1 && docs[0]!.errors.length === 0 ? docs[0] : undefined;
}

/**
 * Rendering options close to how the document is written, so that the rendering before and after
 * the injection lines up with the user's text and new lines are indented like their neighbours.
 */
function renderOptionsLike(text: string): ToStringOptions {
  const steps = new Map<number, number>();
  let seqIndented = 0;
  let seqFlush = 0;
  let previous: { indent: number; opens: boolean } | undefined;
  for (const line of text.split('\n')) {
    const match = /^( *)(- )?(\S.*?)\r?$/.exec(line);
    if (!match || match[3]!.startsWith('#')) continue;
    const indent = match[1]!.length;
    if (previous?.opens && indent > previous.indent) {
      if (match[2]) seqIndented++;
      steps.set(indent - previous.indent, (steps.get(indent - previous.indent) ?? 0) + 1);
    } else if (previous?.opens && indent === previous.indent && match[2]) seqFlush++;
    const content = match[3]!.replace(/\s+#.*$/, '');
    previous = { indent: indent + (match[2] ? 2 : 0), opens: /:$/.test(content) };
  }
  let indent = 2;
  let best = 0;
  for (const [step, count] of steps) if (count > best && step >= 1 && step <= 8) [indent, best] = [step, count];
  const padded = (text.match(/[[{] \S/g) ?? []).length;
  const tight = (text.match(/[[{][^\s\]}]/g) ?? []).length;
  return { ...OUTPUT_OPTIONS, indent, indentSeq: seqFlush <= seqIndented, flowCollectionPadding: padded > tight };
}

/** A deep copy in which no two places share an object (what the API server makes of aliases). */
function unshared(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unshared);
  if (isObject(value)) {
    const copy: JsonObject = {};
    for (const [key, item] of Object.entries(value)) copy[key] = unshared(item);
    return copy;
  }
  return value;
}

function countLines(text: string, from: number, to: number): number {
  let lines = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) lines++;
  return lines;
}

/** Integers outside ±2^53 stay BigInt (and are written back digit for digit); the rest are plain numbers. */
function numberWhereSafe(_key: unknown, value: unknown): unknown {
  return typeof value === 'bigint' && Number.isSafeInteger(Number(value)) ? Number(value) : value;
}

/** The comment above a document's first line, wherever the parser attached it (document, map or first key). */
function leadingComment(doc: Document.Parsed): string | null {
  const contents = doc.contents;
  const firstKey = isMap(contents) && isNode(contents.items[0]?.key) ? contents.items[0].key : undefined;
  const parts = [doc.commentBefore, isNode(contents) ? contents.commentBefore : undefined, firstKey?.commentBefore];
  return parts.filter(Boolean).join('\n') || null;
}
