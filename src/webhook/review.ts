// The admission decision, free of HTTP: AdmissionReview in, AdmissionReview out. The fastify route
// only decodes, calls these and encodes (STYLE: the processors work on the raw admission request).
import type { Operation } from 'fast-json-patch';
import type { InjectionSettings } from '../config.js';
import { InjectionRefused, planInjection, type JsonObject } from '../inject/plan.js';
import { WebhookRequestError } from './errors.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
/** Containers + init + ephemeral containers we inject into; every one adds env ops to the patch. */
export const MAX_CONTAINERS = 256;
/** A patch above this is refused: the API server would have to apply and store it (etcd's limit is 1.5 MiB). */
export const MAX_PATCH_BYTES = 1024 * 1024;

/** The fields of admission.k8s.io/v1 AdmissionRequest we read; `object` stays raw JSON. */
export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  namespace?: string;
  name?: string;
  operation?: string;
  object?: unknown;
}

export type AdmissionDecision =
  | { kind: 'allow'; reason: string }
  | { kind: 'patch'; ops: Operation[]; warnings: string[]; /** JSON.stringify(ops), when already computed */ opsJson?: string }
  | { kind: 'deny'; code: number; reason: string; message: string };

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    patchType?: 'JSONPatch';
    patch?: string;
    warnings?: string[];
    status?: { status: 'Failure'; code: number; reason: string; message: string };
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates the envelope; throws WebhookRequestError(400) saying what is missing. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isRecord(body)) {
    throw new WebhookRequestError(400, 'request body must be a JSON object: an admission.k8s.io/v1 AdmissionReview');
  }
  if (body['kind'] !== 'AdmissionReview') {
    throw new WebhookRequestError(
      400,
      `request body has kind ${JSON.stringify(body['kind'] ?? null)}, expected "AdmissionReview" (apiVersion ${ADMISSION_API_VERSION})`,
    );
  }
  if (body['apiVersion'] !== ADMISSION_API_VERSION) {
    throw new WebhookRequestError(
      400,
      `AdmissionReview apiVersion ${JSON.stringify(body['apiVersion'] ?? null)} is not supported: this webhook speaks only ${ADMISSION_API_VERSION}; set admissionReviewVersions: ["v1"] in the MutatingWebhookConfiguration`,
    );
  }
  const request = body['request'];
  if (!isRecord(request)) {
    throw new WebhookRequestError(400, 'AdmissionReview has no "request" object; the API server always sends one');
  }
  const uid = request['uid'];
  if (typeof uid !== 'string' || uid === '') {
    throw new WebhookRequestError(400, 'AdmissionReview request.uid is missing or not a string; the response must echo it');
  }
  return request as unknown as AdmissionRequest;
}

/** True for CREATE of the `pods` resource itself (not pods/binding, pods/ephemeralcontainers, ...). */
export function isPodCreate(request: AdmissionRequest): boolean {
  const group = request.resource?.group ?? request.kind?.group ?? '';
  const resource = request.resource?.resource ?? (request.kind?.kind === 'Pod' ? 'pods' : '');
  return request.operation === 'CREATE' && group === '' && resource === 'pods' && !request.subResource;
}

/**
 * What to answer. `caLoaded` false means `settings.caPem` is unusable: a pod that would be injected
 * is denied (the API server reports it and the controller retries) instead of starting without the CA.
 */
export function admissionDecision(request: AdmissionRequest, settings: InjectionSettings, caLoaded: boolean): AdmissionDecision {
  if (!isPodCreate(request)) {
    return { kind: 'allow', reason: `not a pod CREATE (${request.operation ?? '?'} ${request.resource?.resource ?? request.kind?.kind ?? '?'})` };
  }
  if (!isRecord(request.object)) {
    throw new WebhookRequestError(400, 'AdmissionReview request.object is missing: a pod CREATE carries the pod');
  }
  const count = containerCount(request.object);
  if (count > MAX_CONTAINERS) {
    return {
      kind: 'deny',
      code: 403,
      reason: 'Forbidden',
      message: `pod ${podLabel(request)}: ${count} containers; demomail injects into at most ${MAX_CONTAINERS} (containers + initContainers + ephemeralContainers); split the pod or set demomail/inject=false`,
    };
  }
  // Controller-created pods carry only generateName and no metadata.namespace: the request knows it.
  const namespace = request.namespace || undefined;
  let plan;
  try {
    plan = planInjection(request.object as JsonObject, namespace, settings, { requireOptInLabel: false });
  } catch (err) {
    // Without a CA the planner may fail on the empty PEM: whatever it says, the answer is "not yet".
    if (!caLoaded) return caNotLoaded();
    if (!(err instanceof InjectionRefused)) throw err;
    return { kind: 'deny', code: 403, reason: 'Forbidden', message: err.message };
  }
  if (plan.action === 'skip') return { kind: 'allow', reason: plan.reason };
  if (!caLoaded) return caNotLoaded();
  if (plan.ops.length === 0) return { kind: 'allow', reason: 'already injected' };
  // Serialised once: the size check and the answer use the same string.
  const opsJson = JSON.stringify(plan.ops);
  const patchBytes = Buffer.byteLength(opsJson);
  if (patchBytes > MAX_PATCH_BYTES) {
    return {
      kind: 'deny',
      code: 403,
      reason: 'Forbidden',
      message: `pod ${podLabel(request)}: the injection patch would be ${patchBytes} bytes, above demomail's limit of ${MAX_PATCH_BYTES}; trim the pod's containers or env, or set demomail/inject=false`,
    };
  }
  return { kind: 'patch', ops: plan.ops, warnings: plan.warnings, opsJson };
}

function containerCount(pod: Record<string, unknown>): number {
  const spec = isRecord(pod['spec']) ? pod['spec'] : {};
  return ['containers', 'initContainers', 'ephemeralContainers'].reduce((sum, key) => sum + (Array.isArray(spec[key]) ? (spec[key] as unknown[]).length : 0), 0);
}

function podLabel(request: AdmissionRequest): string {
  const meta = isRecord(request.object) && isRecord(request.object['metadata']) ? request.object['metadata'] : {};
  const name = typeof meta['name'] === 'string' && meta['name'] !== '' ? meta['name'] : `${typeof meta['generateName'] === 'string' ? meta['generateName'] : ''}*`;
  return `${request.namespace ?? '?'}/${name}`;
}

function caNotLoaded(): AdmissionDecision {
  return {
    kind: 'deny',
    code: 503,
    reason: 'ServiceUnavailable',
    message:
      'demomail webhook has not loaded the mail CA yet (ConfigMap/Secret demomail-ca not mounted or not created by the bootstrap Job); the pod cannot trust the mail server without it. Retry in a minute: controllers retry on their own',
  };
}

export function admissionReviewResponse(uid: string, decision: AdmissionDecision): AdmissionReviewResponse {
  const base = { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview' } as const;
  switch (decision.kind) {
    case 'allow':
      return { ...base, response: { uid, allowed: true } };
    case 'patch':
      return {
        ...base,
        response: {
          uid,
          allowed: true,
          patchType: 'JSONPatch',
          patch: patchBase64(decision),
          ...(decision.warnings.length > 0 ? { warnings: decision.warnings } : {}),
        },
      };
    case 'deny':
      return {
        ...base,
        response: {
          uid,
          allowed: false,
          status: { status: 'Failure', code: decision.code, reason: decision.reason, message: decision.message },
        },
      };
  }
}

function patchBase64(decision: Extract<AdmissionDecision, { kind: 'patch' }>): string {
  return Buffer.from(decision.opsJson ?? JSON.stringify(decision.ops), 'utf8').toString('base64');
}

const REVIEW_HEAD = `{"apiVersion":"${ADMISSION_API_VERSION}","kind":"AdmissionReview","response":{"uid":`;

/**
 * `JSON.stringify(admissionReviewResponse(uid, decision))`, byte for byte, without building the object:
 * the answer is sent as this string, so fastify does not scan the 10-20 KB base64 patch a second time.
 */
export function admissionReviewJson(uid: string, decision: AdmissionDecision): string {
  return REVIEW_HEAD + JSON.stringify(uid) + answerTail(decision);
}

const REVIEW_HEAD_BYTES = Buffer.from(REVIEW_HEAD);

/**
 * admissionReviewJson's UTF-8 bytes, from a tail already encoded: the 10-20 KB tail is copied, not encoded again
 * for every pod (the answer cache keeps it as bytes).
 */
export function answerBytes(uid: string, tail: Buffer): Buffer {
  const quotedUid = JSON.stringify(uid);
  const uidBytes = Buffer.byteLength(quotedUid);
  const bytes = Buffer.allocUnsafe(REVIEW_HEAD_BYTES.length + uidBytes + tail.length);
  REVIEW_HEAD_BYTES.copy(bytes, 0);
  bytes.write(quotedUid, REVIEW_HEAD_BYTES.length);
  tail.copy(bytes, REVIEW_HEAD_BYTES.length + uidBytes);
  return bytes;
}

/** What follows `"uid":"…"` in the answer; the key order is admissionReviewResponse's. */
export function answerTail(decision: AdmissionDecision): string {
  switch (decision.kind) {
    case 'allow':
      return ',"allowed":true}}';
    case 'patch': {
      // Base64 needs no JSON escaping.
      const warnings = decision.warnings.length > 0 ? `,"warnings":${JSON.stringify(decision.warnings)}` : '';
      return `,"allowed":true,"patchType":"JSONPatch","patch":"${patchBase64(decision)}"${warnings}}}`;
    }
    case 'deny':
      return `,"allowed":false,"status":${JSON.stringify({ status: 'Failure', code: decision.code, reason: decision.reason, message: decision.message })}}}`;
  }
}

/** Who the request is about, for log lines: never the object itself. */
export function requestSubject(request: AdmissionRequest): { uid: string; namespace: string; name: string } {
  const object = isRecord(request.object) ? request.object : {};
  const metadata = isRecord(object['metadata']) ? object['metadata'] : {};
  const namespace = request.namespace || (typeof metadata['namespace'] === 'string' ? metadata['namespace'] : '');
  const name =
    request.name ||
    (typeof metadata['name'] === 'string' && metadata['name']) ||
    (typeof metadata['generateName'] === 'string' ? `${metadata['generateName']}*` : '');
  return { uid: request.uid, namespace, name };
}

/**
 * Everything the route does with a decision, as data: the answer's tail, the metric, the pod's log line
 * (without the uid, which each request adds). The same review text always yields the same answer
 * (answer-cache.ts relies on it).
 */
export interface AdmissionAnswer {
  decision: AdmissionDecision['kind'];
  /** For a denial, the status code (the denied metric's label). */
  code: number;
  /** answerTail's bytes (answerBytes). */
  tail: Buffer;
  level: 'info' | 'debug' | 'warn';
  message: string;
  /** The log line's fields after the uid: never the object itself. */
  fields: Readonly<Record<string, string | number>>;
  /** Characters held: what the answer cache counts. */
  chars: number;
}

export function admissionAnswer(request: AdmissionRequest, decision: AdmissionDecision): AdmissionAnswer {
  const { namespace, name } = requestSubject(request);
  const tail = Buffer.from(answerTail(decision));
  const base = { decision: decision.kind, tail, chars: tail.length };
  // The warnings themselves go back to the client (kubectl prints them); the line carries their count.
  switch (decision.kind) {
    case 'patch':
      return { ...base, code: 200, level: 'info', message: 'pod injected', fields: { namespace, name, decision: 'inject', ops: decision.ops.length, warnings: decision.warnings.length } };
    case 'allow':
      return { ...base, code: 200, level: 'debug', message: 'allowed unchanged', fields: { namespace, name, decision: 'allow', reason: decision.reason } };
    case 'deny':
      return { ...base, code: decision.code, level: 'warn', message: 'pod denied', fields: { namespace, name, decision: 'deny', code: decision.code, message: decision.message } };
  }
}
