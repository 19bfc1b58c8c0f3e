// The write order of a reconcile, against a recording KubeClient (the HTTP edge has its own tests).
import t from 'tap';
import { settingsFrom } from '../config.js';
import { CopyFailures, applyPlan, readState, webhookConfigurationRef } from './apply.js';
import { KubeApiError, type KubeClient, type ObjectRef } from './kube.js';
import { describe, type KubeObject } from './objects.js';
import { desiredObjects, randomAlphanumericPassword } from './plan.js';

const settings = settingsFrom({});

function recordingClient(existing: KubeObject[], failOn?: (obj: KubeObject) => boolean, namespaces = ['shop']) {
  const applied: string[] = [];
  const deleted: string[] = [];
  const verbs: string[] = [];
  const client: KubeClient = {
    async get(ref: ObjectRef) {
      return existing.find((o) => o.kind === ref.kind && o.metadata.name === ref.metadata.name && (o.metadata.namespace ?? '') === (ref.metadata.namespace ?? ''));
    },
    async apply(obj: KubeObject) {
      if (failOn?.(obj)) throw new Error(`refused ${describe(obj)}`);
      applied.push(describe(obj));
      verbs.push(`apply ${describe(obj)}${obj.metadata.resourceVersion ? ` rv=${obj.metadata.resourceVersion}` : ''}`);
      return obj;
    },
    async create(obj: KubeObject) {
      if (failOn?.(obj)) throw new Error(`refused ${describe(obj)}`);
      applied.push(describe(obj));
      verbs.push(`create ${describe(obj)}`);
      return obj;
    },
    async namespacesWithLabel() {
      return namespaces;
    },
    async delete(ref: ObjectRef) {
      const at = existing.findIndex((o) => o.kind === ref.kind && o.metadata.name === ref.metadata.name);
      if (at === -1) return false;
      existing.splice(at, 1);
      deleted.push(describe(ref as KubeObject));
      return true;
    },
    get writes() {
      return applied.length + deleted.length;
    },
  };
  return { client, applied, deleted, verbs };
}

const mwc = {
  ...(webhookConfigurationRef(settings) as KubeObject),
  webhooks: [{ name: 'pod-label.inject.demomail.io', clientConfig: { service: { name: 'demomail-webhook', namespace: 'demomail' } } }],
} as KubeObject;

t.test('trust before serving: the caBundle is written before the webhook serving Secret', async (t) => {
  const { client, applied } = recordingClient([mwc]);
  const read = await readState(client, settings);
  const plan = desiredObjects(settings, read.state, { now: new Date(), randomPassword: () => randomAlphanumericPassword() });
  await applyPlan(client, settings, plan, read, () => {});
  const bundle = applied.findIndex((d) => d.startsWith('MutatingWebhookConfiguration'));
  const serving = applied.findIndex((d) => d.includes(settings.names.webhookTlsSecret));
  t.ok(bundle >= 0 && serving >= 0, 'both written on a first run');
  t.ok(bundle < serving, `caBundle (#${bundle}) before ${settings.names.webhookTlsSecret} (#${serving})`);
});

t.test('a run failing on a namespace copy has already made the new serving certificate trusted', async (t) => {
  const { client, applied } = recordingClient([mwc], (obj) => obj.metadata.namespace === 'shop');
  const read = await readState(client, settings);
  const plan = desiredObjects(settings, read.state, { now: new Date(), randomPassword: () => randomAlphanumericPassword() });
  await t.rejects(applyPlan(client, settings, plan, read, () => {}), /refused .*shop/);
  t.ok(applied.some((d) => d.startsWith('MutatingWebhookConfiguration')), 'caBundle written');
});

t.test('Service demomail-api of an earlier release is deleted after the new objects, once', async (t) => {
  const api = { apiVersion: 'v1', kind: 'Service', metadata: { name: settings.names.apiService, namespace: settings.namespace } } as KubeObject;
  const { client, applied, deleted } = recordingClient([mwc, api]);
  const read = await readState(client, settings);
  const plan = desiredObjects(settings, read.state, { now: new Date(), randomPassword: () => randomAlphanumericPassword() });
  const reports = await applyPlan(client, settings, plan, read, () => {});
  t.same(deleted, [`Service ${settings.namespace}/${settings.names.apiService}`]);
  t.ok(applied.includes(`Service ${settings.namespace}/${settings.names.uiService}`), 'demomail-ui created');
  t.equal(reports.at(-1)?.outcome, 'deleted', 'deleted last');
  const again = await readState(client, settings);
  t.same(desiredObjects(settings, again.state, { now: new Date(), randomPassword: () => randomAlphanumericPassword() }).obsolete, [], 'nothing left to delete');
});

t.test('DEPLOY_MAILSERVER other than "1": nothing deleted', async (t) => {
  const off = settingsFrom({ DEPLOY_MAILSERVER: '0' });
  const api = { apiVersion: 'v1', kind: 'Service', metadata: { name: off.names.apiService, namespace: off.namespace } } as KubeObject;
  const { client } = recordingClient([mwc, api]);
  const read = await readState(client, off);
  t.same(desiredObjects(off, read.state, { now: new Date(), randomPassword: () => randomAlphanumericPassword() }).obsolete, []);
});

t.test('one failing labelled namespace does not stop the copies to the others; all failures are reported at the end', async (t) => {
  const { client, applied } = recordingClient([mwc], (obj) => obj.metadata.namespace === 'b-bad' || obj.metadata.namespace === 'd-gone', ['a-ok', 'b-bad', 'c-ok', 'd-gone']);
  const read = await readState(client, settings);
  const plan = desiredObjects(settings, read.state, { now: new Date(), randomPassword: () => randomAlphanumericPassword() });
  const lines: string[] = [];
  const err = await applyPlan(client, settings, plan, read, (l) => lines.push(l)).catch((e: Error) => e);
  t.ok(err instanceof CopyFailures);
  t.match((err as Error).message, /^copies failed in 2 of 4 labelled namespace\(s\), the others and namespace demomail are up to date: b-bad \(refused Secret b-bad\/demomail-smtp\); d-gone \(refused Secret d-gone\/demomail-smtp\)$/);
  for (const ns of ['a-ok', 'c-ok']) t.equal(applied.filter((d) => d.includes(` ${ns}/`)).length, 4, `${ns}: all four copies written`);
  t.equal(lines.filter((l) => /b-bad.*skipped \(an earlier object in namespace b-bad failed\)/.test(l)).length, 3, 'the rest of a failed namespace is skipped, not retried object by object');
});

t.test('generated material: absent → plain create, present → apply with the resourceVersion read', async (t) => {
  const first = recordingClient([mwc], undefined, []);
  const read = await readState(first.client, settings);
  const plan = desiredObjects(settings, read.state, { now: new Date(), randomPassword: () => randomAlphanumericPassword() });
  await applyPlan(first.client, settings, plan, read, () => {});
  t.same(first.verbs.filter((v) => v.startsWith('create')), [
    'create Secret demomail/demomail-ca',
    'create Secret demomail/demomail-mailserver-tls',
    'create Secret demomail/demomail-webhook-tls',
    'create Secret demomail/demomail-smtp',
    'create Secret demomail/demomail-imap',
    'create Secret demomail/demomail-imap2',
  ]);
  t.ok(first.verbs.includes('apply ConfigMap demomail/demomail-ca'), 'derived objects: server-side apply');
  // A stored Secret whose password is gone: regenerated, written with a precondition.
  const stored = plan.objects.map((o) => ({ ...o, metadata: { ...o.metadata, resourceVersion: '42' } }));
  const smtp = stored.find((o) => o.metadata.name === 'demomail-smtp') as KubeObject;
  smtp['data'] = { username: (smtp['data'] as Record<string, string>)['username'] };
  const second = recordingClient([mwc, ...stored], undefined, []);
  const read2 = await readState(second.client, settings);
  const plan2 = desiredObjects(settings, read2.state, { now: new Date(), randomPassword: () => randomAlphanumericPassword() });
  await applyPlan(second.client, settings, plan2, read2, () => {});
  t.ok(second.verbs.includes('apply Secret demomail/demomail-smtp rv=42'), second.verbs.join('\n'));
});

t.test('a stale read (another run was first) is handed back for a re-plan, even from a labelled namespace', async (t) => {
  const { client } = recordingClient([mwc], undefined, ['shop']);
  client.apply = async (obj) => {
    if (obj.metadata.namespace === 'shop') throw new KubeApiError('conflict', 409, 'Conflict');
    return obj;
  };
  const read = await readState(client, settings);
  const plan = desiredObjects(settings, read.state, { now: new Date(), randomPassword: () => randomAlphanumericPassword() });
  const err = await applyPlan(client, settings, plan, read, () => {}).catch((e: unknown) => e);
  t.ok(err instanceof KubeApiError && err.reason === 'Conflict');
});
