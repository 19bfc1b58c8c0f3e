import t from 'tap';
import { caBundlePatch, managedDifference } from './compare.js';
import type { KubeObject } from './objects.js';

const desired: KubeObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 's', namespace: 'n', labels: { a: '1' } },
  spec: { type: 'ClusterIP', ports: [{ name: 'smtp', port: 25, targetPort: 3025 }] },
};

t.test('managedDifference: our fields only, lists whole, values never reported', async (t) => {
  const table: [string, unknown, string | undefined][] = [
    ['absent', undefined, '(object does not exist)'],
    ['identical', structuredClone(desired), undefined],
    [
      'server defaults and metadata are ignored',
      { ...structuredClone(desired), metadata: { name: 's', namespace: 'n', labels: { a: '1', extra: 'x' }, resourceVersion: '9' }, spec: { type: 'ClusterIP', clusterIP: '10.0.0.1', ports: [{ name: 'smtp', port: 25, targetPort: 3025, protocol: 'TCP' }] } },
      undefined,
    ],
    ['changed label', { ...structuredClone(desired), metadata: { name: 's', namespace: 'n', labels: { a: '2' } } }, 'metadata.labels.a'],
    ['changed port', { ...structuredClone(desired), spec: { type: 'ClusterIP', ports: [{ name: 'smtp', port: 25, targetPort: 25 }] } }, 'spec.ports[0].targetPort'],
    ['extra list entry', { ...structuredClone(desired), spec: { type: 'ClusterIP', ports: [{ name: 'smtp', port: 25, targetPort: 3025 }, { name: 'x', port: 1, targetPort: 1 }] } }, 'spec.ports (length 2 → 1)'],
    ['type mismatch', { ...structuredClone(desired), spec: 'oops' }, 'spec'],
  ];
  for (const [name, current, want] of table) t.equal(managedDifference(desired, current as KubeObject | undefined), want, name);
  const secret: KubeObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'p' }, data: { password: 'c2VjcmV0' } };
  const diff = managedDifference(secret, { ...secret, data: { password: 'b3RoZXI=' } });
  t.equal(diff, 'data.password', 'the path, not the value');
});

t.test('caBundlePatch', async (t) => {
  const pem = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  const b64 = Buffer.from(pem).toString('base64');
  const mwc = (bundles: (string | undefined)[]): KubeObject => ({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'demomail' },
    webhooks: bundles.map((caBundle, i) => ({ name: `w${i}`, clientConfig: caBundle === undefined ? {} : { caBundle } })),
  });
  t.equal(caBundlePatch(undefined, pem), undefined, 'no configuration: nothing to patch');
  t.equal(caBundlePatch(mwc([]), pem), undefined, 'no entries: nothing to patch');
  t.equal(caBundlePatch(mwc([b64, b64]), pem), undefined, 'same bytes everywhere: no write');
  const patch = caBundlePatch(mwc([b64, undefined]), pem);
  t.same(patch?.['webhooks'], [{ name: 'w0', clientConfig: { caBundle: b64 } }, { name: 'w1', clientConfig: { caBundle: b64 } }], 'one differs: every entry is named');
  t.same(caBundlePatch(mwc([Buffer.from(pem.replace('\n-----END', '\n\n-----END')).toString('base64')]), pem)?.metadata, { name: 'demomail' }, 'byte comparison, not PEM equivalence');
});

t.test('managedDifference: the desired hash catches a field we stopped setting, and is checked last', async (t) => {
  const hashed = (hash: string, extra: Record<string, string> = {}): KubeObject => ({ ...desired, metadata: { ...desired.metadata, annotations: { 'demomail/desired-hash': hash, ...extra } } });
  t.equal(managedDifference(hashed('h1'), hashed('h1', { old: 'x' })), undefined);
  t.equal(managedDifference(hashed('h2'), hashed('h1', { old: 'x' })), 'metadata.annotations.demomail/desired-hash (a field we used to set is no longer wanted)');
  const changed = { ...hashed('h2'), spec: { type: 'ClusterIP', ports: [{ name: 'smtp', port: 26, targetPort: 3025 }] } };
  t.equal(managedDifference(changed, hashed('h1')), 'spec.ports[0].port', 'the changed field is named, not the hash');
});
