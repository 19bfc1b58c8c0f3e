// `demomail inject`: offline injection of manifests (like `istioctl kube-inject`). It finds the
// pod (template) in each object, asks planInjection — the webhook's own function — for the ops
// and applies them with fast-json-patch, so a Pod comes out exactly as the webhook would leave it.
import jsonpatch from 'fast-json-patch';
import {
  Document,
  isMap,
  isNode,
  parseAllDocuments,
  type CreateNodeOptions,
  type DocumentOptions,
  type ParseOptions,
  type ScalarTag,
  type SchemaOptions,
  type ToStringOptions,
  type YAMLError,
} from 'yaml';
import type { InjectionSettings } from '../config.js';
import { InjectionRefused, isObject, planInjection, type JsonObject } from './plan.js';

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
  return parseAllDocuments(text, PARSE_OPTIONS)
    .map((doc) => {
      throwOnYamlError(doc.errors, source);
      return documentObject(doc, source);
    })
    .filter((object) => object !== null && object !== undefined);
}

/**
 * The plain object of a parsed document. The yaml library reports some problems only here, as plain
 * exceptions (an alias to an anchor that was never set, an alias bomb over maxAliasCount): make them
 * ManifestErrors that name the file like every other YAML error.
 */
function documentObject(doc: ReturnType<typeof parseAllDocuments>[number], source: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100, reviver: numberWhereSafe }) as unknown;
  } catch (err) {
    throw new ManifestError(`${source}: invalid YAML: ${(err as Error).message}`);
  }
}

function throwOnYamlError(errors: readonly YAMLError[], source: string): void {
  const error = errors[0];
  if (!error) return;
  const at = error.linePos?.[0];
  const where = at ? `${source}:${at.line}:${at.col}` : source;
  throw new ManifestError(`${where}: invalid YAML (${error.code}): ${error.message.replace(/ at line \d+[\s\S]*$/, '')}`);
}

/** Multi-document YAML in, multi-document YAML out; throws ManifestError(message names source + reason). */
export function injectManifests(text: string, settings: InjectionSettings, options: ManifestOptions): string {
  const { source } = options;
  const defaultNamespace = options.namespace || 'default';
  const out: string[] = [];
  const docs = parseAllDocuments(text, PARSE_OPTIONS);
  // Only comments or blank lines: nothing to inject, nothing to normalise.
  if (docs.length === 0) return text;
  for (const doc of docs) {
    throwOnYamlError(doc.errors, source);
    // Rendered from the parsed document either way: unchanged documents keep their comments.
    doc.directives.docStart = null;
    doc.directives.docEnd = false;
    if (doc.directives.yaml) doc.directives.yaml.explicit = false;
    const object = documentObject(doc, source);
    if (object === null || object === undefined) {
      // An empty document (kubectl skips it): keep its comments, drop the rest.
      const comments = commentsOf(doc);
      if (comments) out.push(`${comments.replace(/^/gm, '#')}\n`);
      continue;
    }
    const context: Context = { source, settings, defaultNamespace, onWarning: options.onWarning };
    const changed = isObject(object) ? injectObject(object, context, `${source}:${lineOf(text, doc.range[0])}`) : false;
    if (!changed) {
      out.push(doc.toString(OUTPUT_OPTIONS));
      continue;
    }
    // Rebuilt from JSON (the patched object is the truth); only the document's own leading and
    // trailing comments can be carried over.
    const rendered = new Document(object, OUTPUT_DOCUMENT_OPTIONS);
    rendered.commentBefore = leadingComment(doc);
    rendered.comment = doc.comment;
    out.push(rendered.toString(OUTPUT_OPTIONS));
  }
  return out.join('---\n');
}

interface Context {
  source: string;
  settings: InjectionSettings;
  defaultNamespace: string;
  onWarning: ((message: string) => void) | undefined;
}

/** Injects the object's pod (template) in place; true when something changed. */
function injectObject(object: JsonObject, context: Context, where: string): boolean {
  const kind = typeof object.kind === 'string' ? object.kind : '';
  if (Array.isArray(object.items) && (kind === 'List' || kind.endsWith('List'))) {
    let changed = false;
    object.items.forEach((item, i) => {
      if (isObject(item) && injectObject(item, context, `${where}: ${kind} items[${i}]`)) changed = true;
    });
    return changed;
  }
  const path = POD_PATHS[kind];
  if (path === undefined) return false;
  const target = path.reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), object);
  if (!isObject(target)) return false;

  const metadata = isObject(object.metadata) ? object.metadata : {};
  const namespace = (typeof metadata.namespace === 'string' && metadata.namespace) || context.defaultNamespace;
  const name = typeof metadata.name === 'string' && metadata.name !== '' ? metadata.name : String(metadata.generateName ?? '<unnamed>');
  const subject = `${where}: ${kind} ${namespace}/${name}`;
  let plan;
  try {
    plan = planInjection(target, namespace, context.settings, { requireOptInLabel: true });
  } catch (err) {
    if (err instanceof InjectionRefused) throw new ManifestError(`${subject}: ${kind === 'Pod' ? '' : 'pod template: '}${err.reason}`);
    throw err;
  }
  if (plan.action === 'skip') return false;
  for (const warning of plan.warnings) context.onWarning?.(`${subject}: ${warning}`);
  if (plan.ops.length === 0) return false;
  // In place on the freshly parsed object (nothing else holds it); `mutateDocument: false` would
  // deep-copy through JSON, which cannot carry the BigInts of out-of-range integers.
  jsonpatch.applyPatch(target, plan.ops, true, true);
  return true;
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

function commentsOf(doc: Document.Parsed): string {
  const contents = isNode(doc.contents) ? doc.contents : undefined;
  return [doc.commentBefore, contents?.commentBefore, contents?.comment, doc.comment].filter(Boolean).join('\n');
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}
