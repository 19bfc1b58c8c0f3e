// Reads what the reconcile manages and writes what differs. Needs only: get on each named object, patch
// (+ create, for server-side apply creating) on the same names, and list on namespaces — never a list
// of Secrets.
import { NAMESPACE_OPT_IN_LABEL, type Settings } from '../config.js';
import { caBundlePatch, managedDifference } from './compare.js';
import type { KubeClient, ObjectRef } from './kube.js';
import { isStaleRead } from './kube.js';
import { describe, keyOf, objectKey, type KubeObject } from './objects.js';
import type { CurrentState, Plan } from './plan.js';

export const OPT_IN_SELECTOR = `${NAMESPACE_OPT_IN_LABEL}=enabled`;

/** Every object the planner may look at, for a given set of labelled namespaces. Pure. */
export function refsToRead(settings: Settings, labelledNamespaces: string[]): ObjectRef[] {
  const n = settings.names;
  const ns = settings.namespace;
  const ref = (apiVersion: string, kind: string, name: string, namespace = ns): ObjectRef => ({ apiVersion, kind, metadata: { name, namespace } });
  const refs: ObjectRef[] = [
    ...[n.caSecret, n.mailserverTlsSecret, n.webhookTlsSecret, n.smtpSecret, n.imapSecret, n.imap2Secret].map((name) =>
      ref('v1', 'Secret', name),
    ),
    ref('v1', 'ConfigMap', n.caConfigMap),
    ref('v1', 'ConfigMap', n.mailserverConfig),
  ];
  if (settings.deployMailserver) {
    refs.push(ref('apps/v1', 'Deployment', n.mailserverDeployment), ...[n.smtpService, n.imapService, n.uiService, n.apiService].map((name) => ref('v1', 'Service', name)));
  }
  for (const target of labelledNamespaces) {
    if (target === ns) continue;
    refs.push(...[n.smtpSecret, n.imapSecret, n.imap2Secret].map((name) => ref('v1', 'Secret', name, target)), ref('v1', 'ConfigMap', n.mailserverConfig, target));
  }
  return refs;
}

export function webhookConfigurationRef(settings: Settings): ObjectRef {
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: settings.names.webhookConfiguration } };
}

export interface ReadResult {
  state: CurrentState;
  webhookConfiguration: KubeObject | undefined;
}

/** Reads in parallel (a handful of GETs); absent objects simply do not appear in `state.objects`. */
export async function readState(client: KubeClient, settings: Settings): Promise<ReadResult> {
  const labelledNamespaces = await client.namespacesWithLabel(OPT_IN_SELECTOR);
  const refs = refsToRead(settings, labelledNamespaces);
  const [webhookConfiguration, ...found] = await Promise.all([client.get(webhookConfigurationRef(settings)), ...refs.map((ref) => client.get(ref))]);
  const objects: Record<string, KubeObject> = {};
  refs.forEach((ref, i) => {
    const obj = found[i];
    if (obj) objects[objectKey(ref.kind, ref.metadata.namespace, ref.metadata.name)] = obj;
  });
  return { state: { objects, labelledNamespaces }, webhookConfiguration };
}

export type ApplyOutcome = 'created' | 'updated' | 'unchanged' | 'skipped' | 'deleted' | 'failed';

export interface NamespaceFailure {
  namespace: string;
  message: string;
}

/** Copies into some labelled namespaces failed; everything else was written. */
export class CopyFailures extends Error {
  override name = 'CopyFailures';
  constructor(
    readonly failures: NamespaceFailure[],
    labelledCount: number,
  ) {
    super(
      `copies failed in ${failures.length} of ${labelledCount} labelled namespace(s), the others and namespace demomail are up to date: ` +
        failures.map((f) => `${f.namespace} (${f.message})`).join('; '),
    );
  }
}
export interface ApplyReport {
  object: string;
  outcome: ApplyOutcome;
  /** First differing path (never a value), or why it was skipped. */
  detail?: string;
}

/**
 * Applies, in plan order, only the objects whose managed content differs. The caBundle goes first:
 * trust before serving. It already carries the new and the previous webhook CA, so the API server
 * accepts both the webhook pods still serving the old certificate and those that reload the new
 * Secret; were it written last, a run failing in between (a quota in a labelled namespace, say) would
 * leave webhook pods serving a certificate the API server does not trust, and every opted-in pod
 * refused until a later run got through.
 */
export async function applyPlan(client: KubeClient, settings: Settings, plan: Plan, read: ReadResult, log: (line: string) => void): Promise<ApplyReport[]> {
  const reports: ApplyReport[] = [];
  const report = (r: ApplyReport) => {
    reports.push(r);
    log(`${r.object}: ${r.outcome}${r.detail ? ` (${r.detail})` : ''}`);
  };

  const configuration = read.webhookConfiguration;
  const label = describe(webhookConfigurationRef(settings) as KubeObject);
  if (configuration === undefined) {
    // Created by `kubectl apply -k manifests/`; SSA here would create an invalid, entry-less object.
    report({ object: label, outcome: 'skipped', detail: 'not found; apply manifests/ first, the next reconcile sets its caBundle' });
  } else {
    const patch = caBundlePatch(configuration, plan.webhookCaBundle);
    if (patch === undefined) {
      report({ object: label, outcome: 'unchanged', detail: 'caBundle already current on every webhook' });
    } else {
      await client.apply(patch);
      report({ object: label, outcome: 'updated', detail: `caBundle written on ${(patch['webhooks'] as unknown[]).length} webhook(s)` });
    }
  }

  // Our own namespace first, whole: a failure there stops the run (everything else depends on it).
  const failures: NamespaceFailure[] = [];
  for (const desired of plan.objects) {
    const namespace = desired.metadata.namespace ?? '';
    if (namespace !== settings.namespace) {
      if (failures.some((f) => f.namespace === namespace)) {
        report({ object: describe(desired), outcome: 'skipped', detail: `an earlier object in namespace ${namespace} failed` });
        continue;
      }
      try {
        await writeIfDifferent(client, settings, desired, read, report);
      } catch (err) {
        // A tenant's namespace must not stop the copies to the others (its own demomail-smtp of another
        // type, an immutable Secret, a quota, a namespace deleted mid-run): note it, go on, fail at the end.
        if (isStaleRead(err)) throw err;
        failures.push({ namespace, message: (err as Error).message });
        report({ object: describe(desired), outcome: 'failed', detail: (err as Error).message });
      }
      continue;
    }
    await writeIfDifferent(client, settings, desired, read, report);
  }
  // After the new objects: Service demomail-api goes once demomail-ui and the gateway exist.
  for (const ref of plan.obsolete) {
    const deleted = await client.delete(ref);
    report({ object: describe(ref as KubeObject), outcome: deleted ? 'deleted' : 'unchanged', detail: deleted ? 'left over from an earlier release' : 'already gone' });
  }
  if (failures.length > 0) throw new CopyFailures(failures, new Set(plan.objects.map((o) => o.metadata.namespace).filter((ns) => ns !== settings.namespace)).size);
  return reports;
}

/**
 * Writes one object when its managed content differs. Generated material in our namespace (CA, keys,
 * passwords) is never force-applied over what another run just wrote: absent → plain create (409
 * AlreadyExists when another run was first: re-read, re-plan, use theirs); present → apply with the
 * resourceVersion we read as a precondition (409 Conflict when it changed since). Everything else is
 * derived from that material, so a plain server-side apply is right for it.
 */
async function writeIfDifferent(client: KubeClient, settings: Settings, desired: KubeObject, read: ReadResult, report: (r: ApplyReport) => void): Promise<void> {
  const current = read.state.objects[keyOf(desired)];
  const difference = managedDifference(desired, current);
  if (difference === undefined) {
    report({ object: describe(desired), outcome: 'unchanged' });
    return;
  }
  const material = desired.kind === 'Secret' && desired.metadata.namespace === settings.namespace;
  if (material && current === undefined) await client.create(desired);
  else if (material) await client.apply({ ...desired, metadata: { ...desired.metadata, resourceVersion: current?.metadata.resourceVersion } });
  else await client.apply(desired);
  report(current === undefined ? { object: describe(desired), outcome: 'created' } : { object: describe(desired), outcome: 'updated', detail: `${difference} differed` });
}
