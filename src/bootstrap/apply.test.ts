// The write order of a reconcile, against a recording KubeClient (the HTTP edge has its own tests).
import t from 'tap';
import { settingsFrom } from '../config.js';
import { applyPlan, readState, webhookConfigurationRef } from './apply.js';
import type { KubeClient, ObjectRef } from './kube.js';
import { describe, type KubeObject } from './objects.js';
import { desiredObjects, randomAlphanumericPassword } from './plan.js';

const settings = settingsFrom({});

function recordingClient(existing: KubeObject[], failOn?: (obj: KubeObject) => boolean) {
  const applied: string[] = [];
  const deleted: string[] = [];
  const client: KubeClient = {
    async get(ref: ObjectRef) {
      return existing.find((o) => o.kind === ref.kind && o.metadata.name === ref.metadata.name && (o.metadata.namespace ?? '') === (ref.metadata.namespace ?? ''));
    },
    async apply(obj: KubeObject) {
      if (failOn?.(obj)) throw new Error(`refused ${describe(obj)}`);
      applied.push(describe(obj));
      return obj;
    },
    async namespacesWithLabel() {
      return ['shop'];
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
  return { client, applied, deleted };
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
