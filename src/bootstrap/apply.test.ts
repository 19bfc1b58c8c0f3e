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
    get writes() {
      return applied.length;
    },
  };
  return { client, applied };
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
