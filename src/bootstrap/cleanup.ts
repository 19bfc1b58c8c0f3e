// `demomail cleanup`: deletes what the bootstrap created — the PKI and credential Secrets, the CA and
// mail-server ConfigMaps, the mail server Deployment and Services in our namespace, and the credential
// copies in every other namespace (labelled or not any more). Runs as the chart's pre-delete hook and,
// for `kubectl delete -k manifests/` users, from a workstation (README "Uninstall").
//
// Decisions:
// - Only objects carrying our label `app.kubernetes.io/managed-by: demomail` are deleted: an application
//   namespace may hold its own ConfigMap `config-mailserver` (the seed platform's name), which stays.
// - By name, never by listing Secrets: RBAC confines get and delete with resourceNames, as for the
//   bootstrap. Every namespace is visited (list namespaces), so copies left in a namespace whose label was
//   removed go too.
// - DELETE carries a uid precondition: an object replaced since we read it is not deleted blindly.
// - No owner references from the bootstrap's objects to a chart object: the garbage collector would
//   delete the CA and every password whenever that owner is deleted, including by `kubectl replace
//   --force` or a GitOps "replace" sync. Deleting the namespace (the chart's and the base's default)
//   removes everything in it; this command is for what lives elsewhere and for kept namespaces.
import { FIELD_MANAGER, type Settings } from '../config.js';
import { DEFAULT_RETRY, KubeApiError, httpTransport, loadKubeConfig, objectPath, withRetry, type KubeTransport, type ObjectRef, type RetryPolicy } from './kube.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

/** Every object the bootstrap may have created, in `namespaces` (all namespaces of the cluster). */
export function cleanupTargets(settings: Settings, namespaces: readonly string[]): ObjectRef[] {
  const n = settings.names;
  const ns = settings.namespace;
  const ref = (apiVersion: string, kind: string, name: string, namespace: string): ObjectRef => ({ apiVersion, kind, metadata: { name, namespace } });
  const own: ObjectRef[] = [
    ref('apps/v1', 'Deployment', n.mailserverDeployment, ns),
    ...[n.smtpService, n.imapService, n.apiService, n.uiService].map((name) => ref('v1', 'Service', name, ns)),
    ...[n.caSecret, n.mailserverTlsSecret, n.webhookTlsSecret, n.smtpSecret, n.imapSecret, n.imap2Secret].map((name) => ref('v1', 'Secret', name, ns)),
    ...[n.caConfigMap, n.mailserverConfig].map((name) => ref('v1', 'ConfigMap', name, ns)),
  ];
  const copies = [...namespaces]
    .filter((name) => name !== ns)
    .sort()
    .flatMap((namespace) => [
      ...[n.smtpSecret, n.imapSecret, n.imap2Secret].map((name) => ref('v1', 'Secret', name, namespace)),
      ref('v1', 'ConfigMap', n.mailserverConfig, namespace),
    ]);
  // A Map keeps the order and drops duplicates (two settings may name the same object).
  return [...new Map([...own, ...copies].map((r) => [`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`, r])).values()];
}

interface LiveObject {
  metadata?: { uid?: string; labels?: Record<string, string> };
}

/** Made by the bootstrap (server-side apply sets this label on everything it writes). */
export function isOurs(obj: LiveObject): boolean {
  return obj.metadata?.labels?.[MANAGED_BY_LABEL] === FIELD_MANAGER;
}

export interface CleanupOptions {
  settings: Settings;
  kubeconfig?: string;
  /** Say what would be deleted, delete nothing. */
  dryRun?: boolean;
  log?: (line: string) => void;
  retry?: RetryPolicy;
  transport?: KubeTransport;
}

export interface CleanupResult {
  deleted: string[];
  /** Present but not ours (no managed-by=demomail label). */
  kept: string[];
}

const label = (r: ObjectRef) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`;

function failure(verb: string, target: string, plural: string, status: number, body: unknown): KubeApiError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { message?: string; reason?: string };
  if (status === 403) {
    return new KubeApiError(
      `${target}: ${verb} forbidden — the cleanup's ServiceAccount needs RBAC verb "${verb}" on ${plural}; see the chart's templates/cleanup.yaml (API server: ${b.message ?? 'no message'})`,
      403,
      b.reason,
    );
  }
  return new KubeApiError(`${target}: ${verb} failed with HTTP ${status}${b.reason ? ` ${b.reason}` : ''}${b.message ? `: ${b.message}` : ''}`, status, b.reason);
}

export async function runCleanup(opts: CleanupOptions): Promise<CleanupResult> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`cleanup: ${line}\n`));
  const transport = opts.transport ?? httpTransport(loadKubeConfig(opts.kubeconfig));
  const policy = opts.retry ?? DEFAULT_RETRY;
  const call = (verb: string, target: string, plural: string, method: string, path: string, body?: string) =>
    withRetry(policy, async () => {
      const response = await transport(method, path, body, body === undefined ? undefined : 'application/json');
      if (response.status === 404) return undefined;
      if (response.status < 200 || response.status > 299) throw failure(verb, target, plural, response.status, response.body);
      return response.body;
    }, undefined, (error, attempt, delayMs) => log(`${error.message}; retry ${attempt} in ${delayMs} ms`));

  const list = (await call('list', 'namespaces', 'namespaces', 'GET', '/api/v1/namespaces')) as { items?: { metadata: { name: string } }[] } | undefined;
  const namespaces = (list?.items ?? []).map((item) => item.metadata.name);
  const result: CleanupResult = { deleted: [], kept: [] };
  for (const ref of cleanupTargets(opts.settings, namespaces)) {
    const plural = objectPath(ref).split('/').at(-2) ?? ref.kind;
    const live = (await call('get', label(ref), plural, 'GET', objectPath(ref))) as LiveObject | undefined;
    if (live === undefined) continue;
    if (!isOurs(live)) {
      log(`${label(ref)}: kept — not created by demomail (no label ${MANAGED_BY_LABEL}=${FIELD_MANAGER})`);
      result.kept.push(label(ref));
      continue;
    }
    if (opts.dryRun) {
      log(`${label(ref)}: would be deleted`);
      result.deleted.push(label(ref));
      continue;
    }
    const options = { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background', preconditions: { uid: live.metadata?.uid } };
    await call('delete', label(ref), plural, 'DELETE', objectPath(ref), JSON.stringify(options));
    log(`${label(ref)}: deleted`);
    result.deleted.push(label(ref));
  }
  log(`${opts.dryRun ? 'dry run: ' : ''}${result.deleted.length} deleted, ${result.kept.length} kept (not ours), ${namespaces.length} namespace(s) visited`);
  return result;
}
