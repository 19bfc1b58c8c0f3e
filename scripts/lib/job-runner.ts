// A "kubelet for Jobs" on the test control plane (which has no kubelet): it watches pods that Jobs own,
// runs each pod's container locally as our image would — `node dist/src/cli.js ARGS` — and reports the
// outcome through `pods/status`, so kube-controller-manager's job-controller completes (or retries) the
// Job exactly as on a node. With it `helm install`/`upgrade`/`uninstall` see their hook Jobs finish.
//
// What the local process gets, as on a node:
// - env: the container's `env` (value, configMapKeyRef, secretKeyRef) and `envFrom` (configMapRef with
//   prefix), resolved from the cluster; none of the test runner's DEMOMAIL_* or KUBECONFIG variables;
// - API access as the pod's ServiceAccount: a TokenRequest bound to the pod, in a kubeconfig passed as
//   KUBECONFIG (what `loadFromDefault` reads; the in-cluster variables are not set), so the RBAC the
//   chart grants is what is exercised.
// Only pods whose single container runs `image` are run; others are left Pending (not ours to fake).
//
// `webhookReadiness`: pods of our image running `webhook` (the webhook Deployment's) are not run; they are
// reported Running and Ready as soon as the Secret and ConfigMap their volumes name exist — what the
// webhook's /readyz says once it has loaded its certificate and the mail CA. That is enough for
// `helm install --wait` to see the Deployment become available after the reconcile made the PKI.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, type ControlPlane } from './control-plane.js';

type Json = Record<string, any>; // any: raw pod JSON from the API server, read field by field

export interface JobRun {
  namespace: string;
  pod: string;
  job: string;
  serviceAccount: string;
  args: string[];
  exitCode: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

export interface JobRunner {
  /** Finished runs, oldest first. */
  readonly runs: readonly JobRun[];
  /** Runs of the Jobs whose name is `job` or starts with `job-` (every pod of them). */
  runsOf(job: string): JobRun[];
  stop(): Promise<void>;
}

export interface JobRunnerOptions {
  /** The image whose pods are run locally (our image, as in IMAGE). */
  image: string;
  log?: (line: string) => void;
  /** Kill a run after this long (default 120 s); the pod is then marked Failed. */
  timeoutMs?: number;
  /** Report the webhook Deployment's pods Ready once their Secret and ConfigMap volumes exist. */
  webhookReadiness?: boolean;
}

/** One HTTPS request to the API server as admin; JSON in and out. */
function api(plane: ControlPlane, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const options: RequestOptions = {
      method,
      ca: plane.caPem,
      cert: plane.adminCertPem,
      key: plane.adminKeyPem,
      headers: { Accept: 'application/json', ...(data ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(data) } : {}) },
      timeout: 30_000,
    };
    const req = request(`${plane.server}${path}`, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Json = {};
        try {
          parsed = text ? (JSON.parse(text) as Json) : {};
        } catch {
          parsed = { message: text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

async function getOk(plane: ControlPlane, path: string): Promise<Json> {
  const r = await api(plane, 'GET', path);
  if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status} ${r.body['message'] ?? ''}`);
  return r.body;
}

/** The container's environment as the kubelet builds it (envFrom first, then env; later wins). */
export async function resolveEnv(plane: ControlPlane, namespace: string, container: Json): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const ns = encodeURIComponent(namespace);
  const data = async (kind: 'configmaps' | 'secrets', name: string, optional: boolean): Promise<Record<string, string> | undefined> => {
    const r = await api(plane, 'GET', `/api/v1/namespaces/${ns}/${kind}/${encodeURIComponent(name)}`);
    if (r.status === 404 && optional) return undefined;
    if (r.status !== 200) throw new Error(`${kind}/${name} in ${namespace}: HTTP ${r.status} (the pod would not start: CreateContainerConfigError)`);
    const raw = (r.body['data'] ?? {}) as Record<string, string>;
    return kind === 'secrets' ? Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : raw;
  };
  for (const source of (container['envFrom'] ?? []) as Json[]) {
    const ref = source['configMapRef'] ?? source['secretRef'];
    const values = await data(source['configMapRef'] ? 'configmaps' : 'secrets', ref['name'], ref['optional'] === true);
    for (const [k, v] of Object.entries(values ?? {})) env[`${source['prefix'] ?? ''}${k}`] = v;
  }
  for (const e of (container['env'] ?? []) as Json[]) {
    if (typeof e['value'] === 'string') env[e['name']] = e['value'];
    const ref = e['valueFrom']?.['configMapKeyRef'] ?? e['valueFrom']?.['secretKeyRef'];
    if (ref) {
      const values = await data(e['valueFrom']['configMapKeyRef'] ? 'configmaps' : 'secrets', ref['name'], ref['optional'] === true);
      const value = values?.[ref['key']];
      if (value !== undefined) env[e['name']] = value;
    }
  }
  return env;
}

export async function startJobRunner(plane: ControlPlane, options: JobRunnerOptions): Promise<JobRunner> {
  const log = options.log ?? (() => undefined);
  const cli = join(repoRoot(), 'dist', 'src', 'cli.js');
  const dir = await mkdtemp(join(tmpdir(), 'demomail-jobs-'));
  const runs: JobRun[] = [];
  const started = new Set<string>();
  const running = new Set<Promise<void>>();
  let stopped = false;
  let watch: ReturnType<typeof request> | undefined;

  const runPod = async (pod: Json): Promise<void> => {
    const meta = pod['metadata'];
    const namespace = meta['namespace'] as string;
    const name = meta['name'] as string;
    const container = pod['spec']['containers'][0] as Json;
    const serviceAccount = (pod['spec']['serviceAccountName'] ?? 'default') as string;
    const job = (meta['labels']?.['batch.kubernetes.io/job-name'] ?? meta['labels']?.['job-name'] ?? '') as string;
    const begin = performance.now();
    const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    let run: JobRun = { namespace, pod: name, job, serviceAccount, args: container['args'] ?? [], exitCode: null, stdout: '', stderr: '', seconds: 0 };
    try {
      const env = await resolveEnv(plane, namespace, container);
      const token = await api(plane, 'POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid: meta['uid'] } },
      });
      if (token.status !== 201) throw new Error(`TokenRequest for ServiceAccount ${namespace}/${serviceAccount}: HTTP ${token.status} ${token.body['message'] ?? ''}`);
      const kubeconfig = join(dir, `${namespace}-${name}.kubeconfig`);
      await writeFile(kubeconfig, plane.kubeconfigFor(token.body['status']['token'] as string, serviceAccount), { mode: 0o600 });
      const clean = Object.fromEntries(
        Object.entries(process.env).filter(([k]) => !k.startsWith('DEMOMAIL_') && !k.startsWith('KUBERNETES_') && k !== 'KUBECONFIG'),
      );
      run = await new Promise<JobRun>((resolve) => {
        const child = spawn(process.execPath, [cli, ...run.args], { env: { ...clean, ...env, KUBECONFIG: kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
        const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
        child.on('exit', (code) => {
          clearTimeout(timer);
          resolve({ ...run, exitCode: code, stdout, stderr, seconds: (performance.now() - begin) / 1000 });
        });
      });
    } catch (err) {
      run = { ...run, exitCode: 1, stderr: `job runner: ${(err as Error).message}`, seconds: (performance.now() - begin) / 1000 };
    }
    runs.push(run);
    log(`job runner: ${namespace}/${name} (${job}) \`${run.args.join(' ')}\` as ${serviceAccount} exited ${run.exitCode} after ${run.seconds.toFixed(1)} s`);
    const succeeded = run.exitCode === 0;
    const finishedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const status = {
      status: {
        phase: succeeded ? 'Succeeded' : 'Failed',
        startTime: startedAt,
        containerStatuses: [
          {
            name: container['name'],
            image: container['image'],
            imageID: '',
            ready: false,
            restartCount: 0,
            started: false,
            state: { terminated: { exitCode: run.exitCode ?? 137, reason: succeeded ? 'Completed' : 'Error', startedAt, finishedAt } },
          },
        ],
      },
    };
    const r = await api(plane, 'PATCH', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/status`, status, 'application/merge-patch+json');
    if (r.status !== 200 && r.status !== 404) log(`job runner: patching pods/status of ${namespace}/${name} failed: HTTP ${r.status} ${r.body['message'] ?? ''}`);
  };

  // Webhook pods waiting for their volumes, by uid; checked every 300 ms.
  const waiting = new Map<string, Json>();
  const volumesPresent = async (pod: Json): Promise<boolean> => {
    const ns = encodeURIComponent(pod['metadata']['namespace'] as string);
    for (const v of (pod['spec']['volumes'] ?? []) as Json[]) {
      const path = v['secret'] ? `secrets/${encodeURIComponent(v['secret']['secretName'])}` : v['configMap'] ? `configmaps/${encodeURIComponent(v['configMap']['name'])}` : undefined;
      if (path && (await api(plane, 'GET', `/api/v1/namespaces/${ns}/${path}`)).status !== 200) return false;
    }
    return true;
  };
  const reportReady = async (pod: Json): Promise<void> => {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const condition = (type: string) => ({ type, status: 'True', lastTransitionTime: now });
    const container = pod['spec']['containers'][0] as Json;
    const status = {
      status: {
        phase: 'Running',
        startTime: now,
        conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map(condition),
        containerStatuses: [{ name: container['name'], image: container['image'], imageID: '', ready: true, started: true, restartCount: 0, state: { running: { startedAt: now } } }],
      },
    };
    const meta = pod['metadata'];
    const r = await api(plane, 'PATCH', `/api/v1/namespaces/${encodeURIComponent(meta['namespace'])}/pods/${encodeURIComponent(meta['name'])}/status`, status, 'application/merge-patch+json');
    if (r.status === 200) log(`job runner: ${meta['namespace']}/${meta['name']} reported Ready (its certificate and CA exist)`);
  };
  const readiness = setInterval(() => {
    for (const [uid, pod] of waiting) {
      void volumesPresent(pod).then(async (present) => {
        if (!present || !waiting.has(uid)) return;
        waiting.delete(uid);
        await reportReady(pod);
      }).catch(() => undefined);
    }
  }, 300);

  const consider = (pod: Json) => {
    const uid = pod['metadata']?.['uid'] as string | undefined;
    const owners = (pod['metadata']?.['ownerReferences'] ?? []) as Json[];
    const containers = (pod['spec']?.['containers'] ?? []) as Json[];
    if (!uid || started.has(uid) || pod['status']?.['phase'] !== 'Pending' || pod['metadata']?.['deletionTimestamp']) return;
    if (containers.length !== 1 || containers[0]?.['image'] !== options.image) return;
    if (options.webhookReadiness && owners.some((o) => o['kind'] === 'ReplicaSet') && containers[0]?.['args']?.[0] === 'webhook') {
      started.add(uid);
      waiting.set(uid, pod);
      return;
    }
    if (!owners.some((o) => o['kind'] === 'Job')) return;
    started.add(uid);
    const p = runPod(pod).catch((err: Error) => log(`job runner: ${err.message}`));
    running.add(p);
    void p.finally(() => running.delete(p));
  };

  // A watch from the current resourceVersion; restarted when the server closes it.
  const startWatch = async (): Promise<void> => {
    const list = await getOk(plane, '/api/v1/pods');
    for (const pod of (list['items'] ?? []) as Json[]) consider(pod);
    const rv = list['metadata']['resourceVersion'] as string;
    await new Promise<void>((resolve) => {
      watch = request(
        `${plane.server}/api/v1/pods?watch=1&allowWatchBookmarks=false&resourceVersion=${rv}&timeoutSeconds=600`,
        { ca: plane.caPem, cert: plane.adminCertPem, key: plane.adminKeyPem, headers: { Accept: 'application/json' } },
        (res) => {
          let buffer = '';
          res.on('data', (c: Buffer) => {
            buffer += c.toString('utf8');
            let newline: number;
            while ((newline = buffer.indexOf('\n')) >= 0) {
              const line = buffer.slice(0, newline);
              buffer = buffer.slice(newline + 1);
              if (line.trim() === '') continue;
              const event = JSON.parse(line) as Json;
              if (event['type'] === 'ADDED' || event['type'] === 'MODIFIED') consider(event['object'] as Json);
            }
          });
          res.on('end', resolve);
          res.on('error', () => resolve());
        },
      );
      watch.on('error', () => resolve());
      watch.end();
    });
    if (!stopped) {
      await new Promise((r) => setTimeout(r, 200));
      void startWatch().catch((err: Error) => log(`job runner: watch failed: ${err.message}`));
    }
  };
  void startWatch().catch((err: Error) => log(`job runner: watch failed: ${err.message}`));

  return {
    get runs() {
      return runs;
    },
    runsOf: (job: string) => runs.filter((r) => r.job === job || r.job.startsWith(`${job}-`)),
    stop: async () => {
      stopped = true;
      clearInterval(readiness);
      watch?.destroy();
      await Promise.all([...running]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
