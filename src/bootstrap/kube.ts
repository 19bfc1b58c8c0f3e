// Thin I/O edge: raw JSON over HTTPS to the API server. client-node supplies the kubeconfig handling
// (files, in-cluster token, client certificates); requests are made here because client-node 1.4's
// KubernetesObjectApi.patch/read run bodies through its model classes (ObjectSerializer), which drop
// fields the models do not know and rewrite others. We send and compare the raw JSON.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { FIELD_MANAGER } from '../config.js';
import { describe, type KubeObject } from './objects.js';

export interface KubeResponse {
  status: number;
  body: unknown;
}
/** One HTTP exchange; tests and the e2e suite may substitute it. */
export type KubeTransport = (method: string, path: string, body?: string, contentType?: string) => Promise<KubeResponse>;

export function loadKubeConfig(kubeconfig: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else if (env['KUBERNETES_SERVICE_HOST'] && env['KUBERNETES_SERVICE_PORT']) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new Error(`no cluster in the kubeconfig${kubeconfig ? ` ${kubeconfig}` : ''}: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod`);
  }
  return kc;
}

const REQUEST_TIMEOUT_MS = 30_000;

export function httpTransport(kc: KubeConfig): KubeTransport {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const base = new URL(cluster.server);
  return async (method, path, body, contentType) => {
    const url = new URL(base.pathname.replace(/\/$/, '') + path, base);
    const options: RequestOptions = { method, headers: { Accept: 'application/json' }, timeout: REQUEST_TIMEOUT_MS };
    await kc.applyToHTTPSOptions(options);
    if (body !== undefined) {
      options.headers = { ...options.headers, 'Content-Type': contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(body) };
    }
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise<KubeResponse>((resolve, reject) => {
      const req = send(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            // keep the text: a proxy in front of the API server may answer with HTML
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000}s`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  };
}

// ---------------------------------------------------------------------------------------------
// Where each kind lives in the REST API (only the kinds the bootstrap touches).

const RESOURCES: Record<string, { prefix: string; plural: string; namespaced: boolean }> = {
  'v1/Secret': { prefix: '/api/v1', plural: 'secrets', namespaced: true },
  'v1/ConfigMap': { prefix: '/api/v1', plural: 'configmaps', namespaced: true },
  'v1/Service': { prefix: '/api/v1', plural: 'services', namespaced: true },
  'v1/Namespace': { prefix: '/api/v1', plural: 'namespaces', namespaced: false },
  'apps/v1/Deployment': { prefix: '/apis/apps/v1', plural: 'deployments', namespaced: true },
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': {
    prefix: '/apis/admissionregistration.k8s.io/v1',
    plural: 'mutatingwebhookconfigurations',
    namespaced: false,
  },
};

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

export function resourceOf(ref: Pick<ObjectRef, 'apiVersion' | 'kind'>) {
  const resource = RESOURCES[`${ref.apiVersion}/${ref.kind}`];
  if (!resource) throw new Error(`the bootstrap does not know the REST path of ${ref.apiVersion} ${ref.kind}`);
  return resource;
}

export function objectPath(ref: ObjectRef): string {
  const r = resourceOf(ref);
  const ns = r.namespaced ? `/namespaces/${encodeURIComponent(ref.metadata.namespace ?? '')}` : '';
  return `${r.prefix}${ns}/${r.plural}/${encodeURIComponent(ref.metadata.name)}`;
}

// ---------------------------------------------------------------------------------------------
// Errors and retries

export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string | undefined,
  ) {
    super(message);
  }
}

interface StatusBody {
  message?: string;
  reason?: string;
  details?: { causes?: { field?: string; reason?: string }[] };
}

/**
 * Network failures, 5xx, 409 and 429 are worth another try; everything else is an answer. Except
 * AlreadyExists and Conflict: someone created or changed the object since we read it (our create or our
 * resourceVersion precondition says so), so our plan is stale; the caller re-reads and plans again
 * instead of overwriting what another run generated.
 */
export function isStaleRead(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 409 && (error.reason === 'AlreadyExists' || error.reason === 'Conflict');
}

export function isRetryable(error: unknown): boolean {
  if (error instanceof KubeApiError) {
    if (isStaleRead(error)) return false;
    return error.status >= 500 || error.status === 409 || error.status === 429;
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (
    code !== undefined &&
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET'].includes(code)
  );
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 250, maxDelayMs: 8000 };

/** Delay before retry number `retry` (1-based): doubling from the base, capped. */
export function backoffDelay(retry: number, policy: RetryPolicy): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
}

export async function withRetry<T>(
  policy: RetryPolicy,
  action: () => Promise<T>,
  sleep = delay,
  onRetry?: (error: Error, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (err) {
      if (!isRetryable(err) || attempt >= policy.attempts) {
        if (attempt > 1) (err as Error).message = `${(err as Error).message} (gave up after ${attempt} attempts)`;
        throw err;
      }
      const wait = backoffDelay(attempt, policy);
      onRetry?.(err as Error, attempt, wait);
      await sleep(wait);
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Names what the ServiceAccount needs when the API server says 403, and what else went wrong otherwise. */
export function apiError(verb: string, target: ObjectRef | string, response: KubeResponse): KubeApiError {
  const body = (typeof response.body === 'object' && response.body !== null ? response.body : {}) as StatusBody;
  const isSecret = typeof target !== 'string' && target.kind === 'Secret';
  const label = typeof target === 'string' ? target : describe(target as KubeObject);
  if (response.status === 403 && /exceeded quota|status unknown for quota|being terminated/.test(body.message ?? '')) {
    return new KubeApiError(`${label}: ${verb} refused by the namespace (HTTP 403): ${body.message}`, 403, body.reason);
  }
  if (response.status === 403) {
    const resource = typeof target === 'string' ? target : `${resourceOf(target).plural} "${target.metadata.name}"`;
    const where = typeof target !== 'string' && target.metadata.namespace ? ` in namespace ${target.metadata.namespace}` : '';
    return new KubeApiError(
      `${label}: ${verb} forbidden — the bootstrap's ServiceAccount needs RBAC verb "${verb}"${verb === 'patch' ? ' (and "create" when the object does not exist yet: server-side apply creates through PATCH)' : ''} on ${resource}${where}; see manifests/ (API server: ${body.message ?? 'no message'})`,
      403,
      body.reason,
    );
  }
  // A Secret's validation message may quote the rejected value: report only the field names.
  const detail = isSecret
    ? (body.details?.causes ?? []).map((c) => `${c.field ?? '?'}: ${c.reason ?? '?'}`).join(', ')
    : (body.message ?? (typeof response.body === 'string' ? response.body.slice(0, 200) : ''));
  const status = [`HTTP ${response.status}`, body.reason].filter(Boolean).join(' ');
  return new KubeApiError(`${label}: ${verb} failed with ${status}${detail ? `: ${detail}` : ''}`, response.status, body.reason);
}

// ---------------------------------------------------------------------------------------------

export interface KubeClient {
  /** The object, or undefined on 404. */
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  /**
   * Server-side apply (field manager `demomail`, force): creates or updates; returns the live object.
   * With `metadata.resourceVersion` set, the API server refuses (409 Conflict) when the object changed since.
   */
  apply(obj: KubeObject): Promise<KubeObject>;
  /** Plain create (POST): 409 AlreadyExists when someone else created it first. */
  create(obj: KubeObject): Promise<KubeObject>;
  /** Names of namespaces matching a label selector. */
  namespacesWithLabel(selector: string): Promise<string[]>;
  /** Deletes the object; false when it was already gone (404). */
  delete(ref: ObjectRef): Promise<boolean>;
  /** Writes made so far (PATCH and DELETE requests answered 2xx). */
  readonly writes: number;
}

export function kubeClient(
  transport: KubeTransport,
  policy: RetryPolicy = DEFAULT_RETRY,
  sleep?: (ms: number) => Promise<void>,
  onRetry?: (error: Error, attempt: number, delayMs: number) => void,
): KubeClient {
  let writes = 0;
  const call = async (verb: string, target: ObjectRef | string, method: string, path: string, body?: string, contentType?: string, allow404 = false) =>
    withRetry(
      policy,
      async () => {
        let response: KubeResponse;
        try {
          response = await transport(method, path, body, contentType);
        } catch (err) {
          const label = typeof target === 'string' ? target : describe(target as KubeObject);
          const e = err as NodeJS.ErrnoException;
          throw Object.assign(new Error(`${label}: ${verb} could not reach the API server: ${[e.code, e.message].filter(Boolean).join(' ')}`), { code: e.code });
        }
        if (allow404 && response.status === 404) return undefined;
        if (response.status < 200 || response.status > 299) throw apiError(verb, target, response);
        return response.body as KubeObject;
      },
      sleep,
      onRetry,
    );
  return {
    get writes() {
      return writes;
    },
    async get(ref) {
      return call('get', ref, 'GET', objectPath(ref), undefined, undefined, true);
    },
    async apply(obj) {
      const query = `?fieldManager=${encodeURIComponent(FIELD_MANAGER)}&force=true`;
      // JSON is YAML: the apply content type takes it as it is.
      const live = await call('patch', obj, 'PATCH', objectPath(obj) + query, JSON.stringify(obj), 'application/apply-patch+yaml');
      writes++;
      return live as KubeObject;
    },
    async delete(ref) {
      const gone = (await call('delete', ref, 'DELETE', objectPath(ref), undefined, undefined, true)) === undefined;
      if (!gone) writes++;
      return !gone;
    },
    async create(obj) {
      const path = objectPath(obj).replace(/\/[^/]+$/, '');
      const live = await call('create', obj, 'POST', `${path}?fieldManager=${encodeURIComponent(FIELD_MANAGER)}`, JSON.stringify(obj));
      writes++;
      return live as KubeObject;
    },
    async namespacesWithLabel(selector) {
      const list = (await call('list', 'namespaces', 'GET', `/api/v1/namespaces?labelSelector=${encodeURIComponent(selector)}`)) as unknown as {
        items?: { metadata: { name: string; deletionTimestamp?: string }; status?: { phase?: string } }[];
      };
      // A Terminating namespace refuses new objects (403): copying into it would fail the whole run.
      return (list.items ?? [])
        .filter((item) => item.status?.phase !== 'Terminating' && !item.metadata.deletionTimestamp)
        .map((item) => item.metadata.name)
        .sort();
    },
  };
}
