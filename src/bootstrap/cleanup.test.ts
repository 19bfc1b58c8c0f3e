// `demomail cleanup` against an in-memory API server (a KubeTransport over a map of objects); the real
// API server, RBAC and the chart's pre-delete hook are exercised by test/e2e/helm.test.ts.
import t from 'tap';
import { settingsFrom } from '../config.js';
import { cleanupTargets, isOurs, runCleanup } from './cleanup.js';
import type { KubeTransport } from './kube.js';

const settings = settingsFrom({});
const ours = { 'app.kubernetes.io/managed-by': 'demomail' };
const FAST = { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 };

function fakeApi(objects: Record<string, { uid: string; labels?: Record<string, string> }>, namespaces: string[], forbid: string[] = []) {
  const calls: string[] = [];
  const store = new Map(Object.entries(objects));
  const transport: KubeTransport = async (method, path, body) => {
    calls.push(`${method} ${path}`);
    if (forbid.some((f) => path.includes(f))) return { status: 403, body: { kind: 'Status', reason: 'Forbidden', message: 'nope' } };
    if (path === '/api/v1/namespaces') return { status: 200, body: { items: namespaces.map((name) => ({ metadata: { name } })) } };
    const live = store.get(path);
    if (!live) return { status: 404, body: { kind: 'Status', reason: 'NotFound' } };
    if (method === 'GET') return { status: 200, body: { metadata: { uid: live.uid, labels: live.labels } } };
    if (method === 'DELETE') {
      const options = JSON.parse(body ?? '{}') as { preconditions?: { uid?: string }; propagationPolicy?: string };
      if (options.preconditions?.uid !== live.uid) return { status: 409, body: { kind: 'Status', reason: 'Conflict' } };
      store.delete(path);
      return { status: 200, body: { kind: 'Status', status: 'Success' } };
    }
    return { status: 405, body: {} };
  };
  return { transport, calls, store };
}

t.test('targets: everything the bootstrap writes in our namespace, the copies everywhere else', async (t) => {
  const refs = cleanupTargets(settings, ['shop', 'demomail', 'kube-system']).map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`);
  t.same(refs.filter((r) => r.includes(' demomail/')), [
    'Deployment demomail/demomail-mailserver',
    'Service demomail/smtpdemo',
    'Service demomail/imapdemo',
    'Service demomail/demomail-api',
    'Service demomail/demomail-ui',
    'Secret demomail/demomail-ca',
    'Secret demomail/demomail-mailserver-tls',
    'Secret demomail/demomail-webhook-tls',
    'Secret demomail/demomail-smtp',
    'Secret demomail/demomail-imap',
    'Secret demomail/demomail-imap2',
    'ConfigMap demomail/demomail-ca',
    'ConfigMap demomail/config-mailserver',
  ]);
  t.same(refs.filter((r) => r.includes(' shop/')), ['Secret shop/demomail-smtp', 'Secret shop/demomail-imap', 'Secret shop/demomail-imap2', 'ConfigMap shop/config-mailserver']);
  t.notOk(refs.some((r) => r.includes('shop/demomail-ca')), 'the CA key was never copied, so never looked for');
  t.equal(new Set(refs).size, refs.length, 'no duplicates');
});

t.test('isOurs: the label server-side apply puts on every bootstrap object', async (t) => {
  t.ok(isOurs({ metadata: { labels: ours } }));
  t.notOk(isOurs({ metadata: { labels: { 'app.kubernetes.io/managed-by': 'Helm' } } }));
  t.notOk(isOurs({ metadata: {} }));
});

t.test('deletes ours with a uid precondition, keeps a foreign config-mailserver, ignores absent ones', async (t) => {
  const api = fakeApi(
    {
      '/api/v1/namespaces/demomail/secrets/demomail-ca': { uid: 'u-ca', labels: ours },
      '/apis/apps/v1/namespaces/demomail/deployments/demomail-mailserver': { uid: 'u-dep', labels: ours },
      '/api/v1/namespaces/shop/secrets/demomail-smtp': { uid: 'u-copy', labels: ours },
      '/api/v1/namespaces/old/configmaps/config-mailserver': { uid: 'u-old', labels: ours },
      '/api/v1/namespaces/seed/configmaps/config-mailserver': { uid: 'u-seed', labels: { app: 'seed' } },
    },
    ['demomail', 'shop', 'old', 'seed'],
  );
  const lines: string[] = [];
  const result = await runCleanup({ settings, transport: api.transport, retry: FAST, log: (l) => lines.push(l) });
  t.same(result.deleted.sort(), [
    'ConfigMap old/config-mailserver',
    'Deployment demomail/demomail-mailserver',
    'Secret demomail/demomail-ca',
    'Secret shop/demomail-smtp',
  ]);
  t.same(result.kept, ['ConfigMap seed/config-mailserver']);
  t.same([...api.store.keys()], ['/api/v1/namespaces/seed/configmaps/config-mailserver'], 'only the foreign object is left');
  t.notOk(api.calls.some((c) => /GET \/api\/v1\/(namespaces\/[^/]+\/)?secrets$/.test(c)), 'Secrets are never listed');
  t.match(lines.join('\n'), /ConfigMap seed\/config-mailserver: kept — not created by demomail/);
  t.match(lines.at(-1), /4 deleted, 1 kept \(not ours\), 4 namespace\(s\) visited/);
});

t.test('dry run deletes nothing', async (t) => {
  const api = fakeApi({ '/api/v1/namespaces/shop/secrets/demomail-imap': { uid: 'u', labels: ours } }, ['demomail', 'shop']);
  const result = await runCleanup({ settings, transport: api.transport, retry: FAST, dryRun: true, log: () => {} });
  t.same(result.deleted, ['Secret shop/demomail-imap']);
  t.equal(api.store.size, 1);
  t.notOk(api.calls.some((c) => c.startsWith('DELETE')));
});

t.test('a missing permission names the verb and the resource', async (t) => {
  const api = fakeApi({}, ['demomail'], ['/deployments/']);
  await t.rejects(runCleanup({ settings, transport: api.transport, retry: FAST, log: () => {} }), /Deployment demomail\/demomail-mailserver: get forbidden — the cleanup's ServiceAccount needs RBAC verb "get" on deployments/);
});
