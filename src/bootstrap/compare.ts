// Whether an apply would change anything, decided without writing: a no-op reconcile makes zero writes.
// The API server adds defaults (protocol, terminationMessagePath, clusterIP, …) and metadata, so "same"
// means: every field we set has that value in the live object, lists have the same length and order
// (we own whole lists such as env and ports), and our desired-hash annotation matches (catches a field we
// stopped setting). Paths are reported, values never: they may be secret.
import type { KubeObject } from './objects.js';

/** Set by the planner on every object (plan.ts withDesiredHash). */
export const DESIRED_HASH_ANNOTATION = 'demomail/desired-hash';

/** The first path where `current` does not carry what `desired` says, or undefined when it does. */
export function managedDifference(desired: KubeObject, current: KubeObject | undefined): string | undefined {
  if (current === undefined) return '(object does not exist)';
  // The hash changes with any field; compare it last so the report names the field that changed.
  const { [DESIRED_HASH_ANNOTATION]: hash, ...annotations } = desired.metadata.annotations ?? {};
  const { annotations: _all, ...metadata } = desired.metadata;
  const withoutHash = { ...desired, metadata: Object.keys(annotations).length > 0 ? { ...metadata, annotations } : metadata };
  const difference = subsetDifference(withoutHash, current, '');
  if (difference !== undefined || hash === undefined) return difference;
  return current.metadata.annotations?.[DESIRED_HASH_ANNOTATION] === hash ? undefined : `metadata.annotations.${DESIRED_HASH_ANNOTATION} (a field we used to set is no longer wanted)`;
}

function subsetDifference(want: unknown, have: unknown, path: string): string | undefined {
  if (Array.isArray(want)) {
    if (!Array.isArray(have)) return path || '(root)';
    if (want.length !== have.length) return `${path} (length ${have.length} → ${want.length})`;
    for (let i = 0; i < want.length; i++) {
      const diff = subsetDifference(want[i], have[i], `${path}[${i}]`);
      if (diff !== undefined) return diff;
    }
    return undefined;
  }
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object' || Array.isArray(have)) return path || '(root)';
    for (const [key, value] of Object.entries(want as Record<string, unknown>)) {
      if (value === undefined) continue;
      const diff = subsetDifference(value, (have as Record<string, unknown>)[key], path ? `${path}.${key}` : key);
      if (diff !== undefined) return diff;
    }
    return undefined;
  }
  return want === have ? undefined : path;
}

export interface WebhookEntry {
  name: string;
  clientConfig?: { caBundle?: string };
}

/**
 * The server-side-apply body that sets `caBundle` on every webhook entry, or undefined when every entry
 * already carries exactly these bytes. It names every entry: an apply that omitted one would drop our
 * ownership of that entry's caBundle, and the API server would remove it.
 */
export function caBundlePatch(configuration: KubeObject | undefined, bundlePem: string): KubeObject | undefined {
  if (configuration === undefined) return undefined;
  const webhooks = (configuration['webhooks'] ?? []) as WebhookEntry[];
  const wanted = Buffer.from(bundlePem, 'utf8').toString('base64');
  if (webhooks.length === 0 || webhooks.every((w) => w.clientConfig?.caBundle === wanted)) return undefined;
  return {
    apiVersion: configuration.apiVersion,
    kind: configuration.kind,
    metadata: { name: configuration.metadata.name },
    webhooks: webhooks.map((w) => ({ name: w.name, clientConfig: { caBundle: wanted } })),
  };
}
