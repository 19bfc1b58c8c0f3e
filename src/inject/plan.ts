// The injection decision and its JSON Patch (DESIGN §3). Pure: raw pod JSON in, ops out. The
// webhook and `demomail inject` both call planInjection, so their results are byte-identical.
//
// Traps this file exists to avoid (STYLE.md, "what to avoid"):
// - ops are computed against the document *as the earlier ops leave it*, never against the
//   original alone: a missing array is created once with its full content, later additions
//   use `/-`, and indices of user init containers are those after ours has been put first;
// - the init container is inserted with an explicit `add /spec/initContainers/0`: a
//   whole-document diff would turn the prepend into `replace` ops on every user init container;
// - the raw JSON is patched, never a client-node model (unknown fields would be dropped).
import type { Operation } from 'fast-json-patch';
import {
  INIT_CONTAINER,
  INJECTED_VOLUME,
  MOUNT_PATH,
  PHP_INI_ANNOTATION,
  POD_OPT_IN_LABEL,
  STATUS_ANNOTATION,
  type InjectionSettings,
} from '../config.js';
import {
  CA_VARIABLES,
  PHP_INI_SCAN_DIR_VALUE,
  desiredEnv,
  desiredInitContainer,
  desiredMount,
  desiredVolume,
  SERVICE_ACCOUNT_TOKEN_PATH,
  statusAnnotation,
} from './template.js';

export type JsonObject = { [key: string]: unknown };
export type InjectionPlan =
  | { action: 'inject'; ops: Operation[]; warnings: string[] }
  | { action: 'skip'; reason: string };

/** The pod cannot be injected safely (a name or path of ours is taken); the message says what to change. */
export class InjectionRefused extends Error {
  override name = 'InjectionRefused';
  /** `subject` names the pod (`pod shop/web-7d9f-`); `reason` says what is wrong and what to do. */
  constructor(
    readonly subject: string,
    readonly reason: string,
  ) {
    super(`${subject}: ${reason}`);
  }
}

export interface PlanOptions {
  /** Offline `demomail inject`: only pods labelled demomail/inject=true. The webhook relies on the API server's selectors instead. */
  requireOptInLabel?: boolean;
}

/**
 * What to do with a pod: skip it (with the reason), or the JSON Patch that injects it.
 * An already injected pod yields `inject` with zero ops. Throws InjectionRefused when a
 * volume, container or mount path we need belongs to the user.
 */
export function planInjection(
  pod: JsonObject,
  requestNamespace: string | undefined,
  settings: InjectionSettings,
  options: PlanOptions = {},
): InjectionPlan {
  if (!isObject(pod)) return skip('not a JSON object');
  if (pod.kind !== undefined && pod.kind !== 'Pod') return skip(`kind ${String(pod.kind)} is not a Pod`);
  const spec = pod.spec;
  if (!isObject(spec) || !Array.isArray(spec.containers)) return skip('not a pod: spec.containers is missing');
  const metadata = isObject(pod.metadata) ? pod.metadata : {};
  const labels = isObject(metadata.labels) ? metadata.labels : {};
  const optIn = labels[POD_OPT_IN_LABEL];
  if (optIn === 'false') return skip(`label ${POD_OPT_IN_LABEL}=false opts the pod out`);
  const namespace = nonEmptyString(metadata.namespace) ?? nonEmptyString(requestNamespace) ?? '';
  if (namespace !== '' && settings.excludedNamespaces.includes(namespace)) {
    return skip(`namespace ${namespace} is never injected`);
  }
  if (options.requireOptInLabel && optIn !== 'true') return skip(`no label ${POD_OPT_IN_LABEL}=true`);

  const who = podIdentity(metadata, namespace);
  const annotationsValue = metadata.annotations;
  if (annotationsValue !== undefined && annotationsValue !== null && !isObject(annotationsValue)) {
    throw new InjectionRefused(who, `metadata.annotations is not a map; fix the manifest`);
  }
  const annotations = isObject(annotationsValue) ? annotationsValue : undefined;
  const ours = annotations !== undefined && Object.hasOwn(annotations, STATUS_ANNOTATION);
  const phpIni = annotations?.[PHP_INI_ANNOTATION] === 'true';

  const volumes = listAt(spec, 'volumes', 'spec.volumes', who);
  const initContainers = containerList(spec, 'initContainers', who);
  const containers = containerList(spec, 'containers', who) ?? [];
  refuseConflicts({ who, ours, volumes, initContainers, containers });

  const ops: Operation[] = [];
  const warnings: string[] = [];

  // 1. volume
  const volume = desiredVolume();
  const volumeIndex = volumes?.findIndex((v) => isObject(v) && v.name === INJECTED_VOLUME) ?? -1;
  if (volumes === undefined) ops.push({ op: 'add', path: '/spec/volumes', value: [volume] });
  else if (volumeIndex < 0) ops.push({ op: 'add', path: '/spec/volumes/-', value: volume });
  else if (!containsDesired(volumes[volumeIndex], volume)) {
    ops.push({ op: 'replace', path: `/spec/volumes/${volumeIndex}`, value: volume });
  }

  // 2. init container, first. After these ops the list is [ours, ...user init containers in
  // their original order], whichever case applied; the paths below rely on that.
  const init = desiredInitContainer(settings);
  const userInits: JsonObject[] = [];
  if (initContainers === undefined) {
    ops.push({ op: 'add', path: '/spec/initContainers', value: [init] });
  } else {
    const ourIndex = initContainers.findIndex((c) => c.name === INIT_CONTAINER);
    if (ourIndex < 0) {
      ops.push({ op: 'add', path: '/spec/initContainers/0', value: init });
    } else {
      // Another webhook prepended its own init container during reinvocation: ours must run
      // before anything that may need the CA, so move it back rather than rewriting the list.
      if (ourIndex > 0) ops.push({ op: 'move', from: `/spec/initContainers/${ourIndex}`, path: '/spec/initContainers/0' });
      if (!containsDesired(initContainers[ourIndex], requiredOfInit(init))) {
        ops.push({ op: 'replace', path: '/spec/initContainers/0', value: init });
      }
    }
    userInits.push(...initContainers.filter((c) => c.name !== INIT_CONTAINER));
  }

  // 3. every other init container (native sidecars too) and container; ephemeral containers
  // are never touched (they cannot exist at CREATE, and are not ours to change later).
  // A fresh list per container: shared objects would alias across ops (and become YAML anchors).
  const env = (): JsonObject[] => desiredEnv(settings, phpIni);
  userInits.forEach((c, i) => {
    containerOps(c, `/spec/initContainers/${i + 1}`, `init container "${String(c.name)}"`, env, ops, warnings);
  });
  containers.forEach((c, i) => {
    containerOps(c, `/spec/containers/${i}`, `container "${String(c.name)}"`, env, ops, warnings);
  });

  // 4. status annotation
  const status = statusAnnotation(settings, {
    initContainers: userInits.map((c) => String(c.name ?? '')),
    containers: containers.map((c) => String(c.name ?? '')),
    phpIni,
  });
  if (!isObject(pod.metadata)) {
    ops.push({ op: 'add', path: '/metadata', value: { annotations: { [STATUS_ANNOTATION]: status } } });
  } else if (annotations === undefined) {
    ops.push({ op: 'add', path: '/metadata/annotations', value: { [STATUS_ANNOTATION]: status } });
  } else if (annotations[STATUS_ANNOTATION] !== status) {
    ops.push({
      op: ours ? 'replace' : 'add',
      path: `/metadata/annotations/${escapePointer(STATUS_ANNOTATION)}`,
      value: status,
    });
  }
  return { action: 'inject', ops, warnings };
}

/**
 * What an existing init container of ours must contain to count as injected: everything but the
 * mount at the token path. A pod injected before that mount existed has there either the API
 * server's token mount (the ServiceAccount plugin runs before webhooks) or nothing; both work, and
 * requiring ours would patch every such pod for no gain. Ours comes with any add or replace.
 */
function requiredOfInit(init: JsonObject): JsonObject {
  const mounts = (init.volumeMounts as JsonObject[]).filter((m) => m.mountPath !== SERVICE_ACCOUNT_TOKEN_PATH);
  return { ...init, volumeMounts: mounts };
}

function containerOps(
  container: JsonObject,
  path: string,
  label: string,
  desired: () => JsonObject[],
  ops: Operation[],
  warnings: string[],
): void {
  const mount = desiredMount();
  const mounts = container.volumeMounts;
  if (!Array.isArray(mounts)) {
    ops.push({ op: 'add', path: `${path}/volumeMounts`, value: [mount] });
  } else {
    const index = mounts.findIndex((m) => isObject(m) && m.name === INJECTED_VOLUME && isOurMountPath(m.mountPath));
    if (index < 0) ops.push({ op: 'add', path: `${path}/volumeMounts/-`, value: mount });
    else if (!containsDesired(mounts[index], mount)) {
      ops.push({ op: 'replace', path: `${path}/volumeMounts/${index}`, value: mount });
    }
  }

  const existing = Array.isArray(container.env) ? container.env : undefined;
  const userEnv = new Map<string, unknown>();
  for (const entry of existing ?? []) {
    if (isObject(entry) && typeof entry.name === 'string' && !userEnv.has(entry.name)) userEnv.set(entry.name, entry);
  }
  const env = desired();
  const missing = env.filter((e) => !userEnv.has(e.name as string));
  if (existing === undefined) {
    if (missing.length > 0) ops.push({ op: 'add', path: `${path}/env`, value: missing });
  } else {
    for (const entry of missing) ops.push({ op: 'add', path: `${path}/env/-`, value: entry });
  }

  for (const wanted of env) {
    const name = wanted.name as string;
    const theirs = userEnv.get(name);
    if (theirs === undefined || containsDesired(theirs, wanted)) continue;
    const shown = describeEnvValue(theirs);
    if (CA_VARIABLES.includes(name)) {
      warnings.push(`${label} sets ${name} itself (${shown}); kept, so clients reading it may not trust the demomail CA`);
    } else if (name === 'PHP_INI_SCAN_DIR') {
      warnings.push(
        `${label} sets PHP_INI_SCAN_DIR itself (${shown}); kept, so PHP will not load ${MOUNT_PATH}/php/zz-demomail.ini unless you add ${PHP_INI_SCAN_DIR_VALUE} to it`,
      );
    }
  }
  if (Array.isArray(container.envFrom) && container.envFrom.length > 0) {
    warnings.push(
      `${label} uses envFrom: the injected variables (SSL_CERT_FILE, DEMOMAIL_*, *_SECRET, ...) take precedence over keys of the same name there; set a variable in env to keep your own value`,
    );
  }
}

interface ConflictInput {
  who: string;
  ours: boolean;
  volumes: unknown[] | undefined;
  initContainers: JsonObject[] | undefined;
  containers: JsonObject[];
}

/** Names and paths we need that the user already uses: injecting would break their pod or ours. */
function refuseConflicts({ who, ours, volumes, initContainers, containers }: ConflictInput): void {
  const fix = `rename it or set ${POD_OPT_IN_LABEL}=false`;
  const ourVolumes = (volumes ?? []).filter((v) => isObject(v) && v.name === INJECTED_VOLUME).length;
  if (ourVolumes > 0 && !ours) throw new InjectionRefused(who, `volume "${INJECTED_VOLUME}" already exists and is not ours; ${fix}`);
  if (ourVolumes > 1) throw new InjectionRefused(who, `volume "${INJECTED_VOLUME}" appears ${ourVolumes} times; remove the duplicates`);
  const ourInits = (initContainers ?? []).filter((c) => c.name === INIT_CONTAINER).length;
  if (ourInits > 0 && !ours) {
    throw new InjectionRefused(who, `init container "${INIT_CONTAINER}" already exists and is not ours; ${fix}`);
  }
  if (ourInits > 1) throw new InjectionRefused(who, `init container "${INIT_CONTAINER}" appears ${ourInits} times; remove the duplicates`);
  // We never put a regular container of that name, so one there is the user's even on an injected pod.
  if (containers.some((c) => c.name === INIT_CONTAINER)) {
    throw new InjectionRefused(who, `container "${INIT_CONTAINER}" already exists and is not ours; ${fix}`);
  }
  const all: Array<[string, JsonObject]> = [
    ...(initContainers ?? []).filter((c) => c.name !== INIT_CONTAINER).map((c): [string, JsonObject] => ['init container', c]),
    ...containers.map((c): [string, JsonObject] => ['container', c]),
  ];
  for (const [kind, c] of all) {
    const mounts = Array.isArray(c.volumeMounts) ? c.volumeMounts : [];
    for (const m of mounts) {
      if (isObject(m) && isOurMountPath(m.mountPath) && m.name !== INJECTED_VOLUME) {
        throw new InjectionRefused(
          who,
          `${kind} "${String(c.name)}" already mounts volume "${String(m.name)}" at ${MOUNT_PATH}; mount it elsewhere or set ${POD_OPT_IN_LABEL}=false`,
        );
      }
    }
  }
}

/** `pod NS/NAME`, with generateName for controller-created pods (`pod shop/web-7d9f-`). */
function podIdentity(metadata: JsonObject, namespace: string): string {
  const name = nonEmptyString(metadata.name) ?? nonEmptyString(metadata.generateName) ?? '<unnamed>';
  return namespace === '' ? `pod ${name}` : `pod ${namespace}/${name}`;
}

function containerList(spec: JsonObject, key: string, who: string): JsonObject[] | undefined {
  const list = listAt(spec, key, `spec.${key}`, who);
  list?.forEach((c, i) => {
    if (!isObject(c)) throw new InjectionRefused(who, `spec.${key}[${i}] is not an object; fix the manifest`);
    // An `add` over a malformed field would silently replace the user's data.
    for (const field of ['env', 'envFrom', 'volumeMounts']) listAt(c, field, `spec.${key}[${i}].${field}`, who);
  });
  return list as JsonObject[] | undefined;
}

/** The list at `key`; undefined when absent or null (an `add` then creates it whole). */
function listAt(parent: JsonObject, key: string, where: string, who: string): unknown[] | undefined {
  const value = parent[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new InjectionRefused(who, `${where} is not a list; fix the manifest`);
  return value;
}

function isOurMountPath(path: unknown): boolean {
  return typeof path === 'string' && path.replace(/\/+$/, '') === MOUNT_PATH;
}

/**
 * True when `actual` has every field of `desired` with the same value. Lists of named items
 * (env, volumeMounts) match by name, so fields the API server defaults (terminationMessagePath)
 * or another webhook adds to our init container do not cause a replace on reinvocation.
 */
export function containsDesired(actual: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) {
    if (!Array.isArray(actual)) return false;
    const named = desired.length > 0 && desired.every((d) => isObject(d) && typeof d.name === 'string');
    if (named) {
      return desired.every((d) => actual.some((a) => isObject(a) && a.name === (d as JsonObject).name && containsDesired(a, d)));
    }
    return actual.length === desired.length && desired.every((d, i) => containsDesired(actual[i], d));
  }
  if (isObject(desired)) {
    return isObject(actual) && Object.keys(desired).every((k) => Object.hasOwn(actual, k) && containsDesired(actual[k], desired[k]));
  }
  return actual === desired;
}

// Names the kind of value, never the value: warnings reach logs and kubectl output, and a
// variable's literal value may be something its owner did not mean to publish.
function describeEnvValue(entry: unknown): string {
  if (isObject(entry) && typeof entry.value === 'string') return 'a literal value';
  if (isObject(entry) && entry.valueFrom !== undefined) return 'from valueFrom';
  return 'empty';
}

/** RFC 6901: `~` → `~0`, `/` → `~1` (so `demomail/status` → `demomail~1status`). */
export function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function skip(reason: string): InjectionPlan {
  return { action: 'skip', reason };
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
