// Golden files (Istio style): test/fixtures/inject/<case>.yaml → <case>.injected.yaml, or
// <case>.error.txt for an input that must be refused; <case>.warnings.txt holds the warnings
// when there are any. Each input goes through `demomail inject` (injectManifests) and, when it
// is a single Pod, through the real webhook handler (the fastify app, POST /mutate in-process via
// app.inject, its base64 JSONPatch applied with fast-json-patch), and both must give the same
// object. Regenerate with UPDATE_GOLDEN=1 and review the diff.
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { Pod, PodTemplate, ReplicationController, Service, ConfigMap, Namespace } from 'kubernetes-models/v1';
import { Deployment, StatefulSet, DaemonSet, ReplicaSet } from 'kubernetes-models/apps/v1';
import { Job, CronJob } from 'kubernetes-models/batch/v1';
import { injectionSettings, settingsFrom, POD_OPT_IN_LABEL } from '../src/config.js';
import { planInjection, InjectionRefused, isObject, type JsonObject } from '../src/inject/plan.js';
import { injectManifests, readManifestObjects, ManifestError } from '../src/inject/manifests.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createCertificateAuthority, createServerCertificate } from '../src/pki/certificates.js';
import { createWebhookServer } from '../src/webhook/server.js';

const DIR = new URL('./fixtures/inject/', import.meta.url);
const UPDATE = process.env.UPDATE_GOLDEN === '1';
/** Both the webhook's request namespace and `demomail inject --namespace`. */
const NAMESPACE = 'shop';
const CA_PEM = readFileSync(new URL('ca/demomail-test-ca.pem', DIR), 'utf8');
const settings = injectionSettings(settingsFrom({}), CA_PEM);

// The webhook exactly as deployed, minus the network: serving cert + key + the fixture mail CA as files.
const webhookDir = mkdtempSync(join(tmpdir(), 'demomail-golden-'));
const servingCa = createCertificateAuthority({ commonName: 'golden webhook CA' });
const serving = createServerCertificate({ ca: servingCa, commonName: 'localhost', sans: ['localhost'] });
writeFileSync(join(webhookDir, 'tls.crt'), serving.certPem);
writeFileSync(join(webhookDir, 'tls.key'), serving.keyPem);
writeFileSync(join(webhookDir, 'ca.crt'), CA_PEM);
const webhook = await createWebhookServer({
  certFile: join(webhookDir, 'tls.crt'),
  keyFile: join(webhookDir, 'tls.key'),
  caFile: join(webhookDir, 'ca.crt'),
  settings: settingsFrom({}),
  logger: pino({ level: 'silent' }),
  defaultMetrics: false,
  pollMs: 3_600_000,
});
t.teardown(async () => {
  await webhook.app.close();
  rmSync(webhookDir, { recursive: true, force: true });
});

interface WebhookAnswer {
  allowed: boolean;
  ops: Operation[];
  message?: string;
}
/** POST /mutate with the pod as request.object, as the API server sends a controller-created pod. */
async function viaWebhook(pod: JsonObject, uid: string): Promise<WebhookAnswer> {
  const res = await webhook.app.inject({
    method: 'POST',
    url: '/mutate',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        operation: 'CREATE',
        namespace: NAMESPACE,
        object: pod,
      },
    }),
  });
  if (res.statusCode !== 200) throw new Error(`webhook answered HTTP ${res.statusCode}: ${res.body}`);
  const response = (JSON.parse(res.body) as { response: { uid: string; allowed: boolean; patch?: string; status?: { message?: string } } }).response;
  if (response.uid !== uid) throw new Error(`webhook echoed uid ${response.uid}, sent ${uid}`);
  const ops = response.patch ? (JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[]) : [];
  return { allowed: response.allowed, ops, message: response.status?.message };
}

const GOLDEN_SUFFIXES = ['.injected.yaml', '.error.txt', '.warnings.txt'];
const files = readdirSync(DIR).filter((f) => statSync(new URL(f, DIR)).isFile());
const cases = files.filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml')).map((f) => f.slice(0, -'.yaml'.length));

// Validates against the Kubernetes OpenAPI schema; throws with the failing field.
// any: each model's constructor takes its own typed shape; the test hands in parsed YAML.
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  Pod, PodTemplate, ReplicationController, Service, ConfigMap, Namespace, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,
};
function validateAll(object: unknown, t: Test): void {
  if (!isObject(object)) return;
  if (Array.isArray(object.items)) {
    for (const item of object.items) validateAll(item, t);
    return;
  }
  const Model = MODELS[String(object.kind)];
  if (Model === undefined) t.fail(`no schema model for kind ${String(object.kind)}: add it to MODELS`);
  else t.doesNotThrow(() => new Model(structuredClone(object)).validate(), `${String(object.kind)} is schema-valid`);
}

/**
 * The alias trap (issue 11): a shared list gets our mount or variables once per reader. The
 * schema check cannot see it; the API server refuses duplicate mount paths and warns on env.
 */
function noDuplicates(value: unknown, t: Test): void {
  if (Array.isArray(value)) value.forEach((item) => noDuplicates(item, t));
  if (!isObject(value)) return;
  if (Array.isArray(value.containers)) {
    for (const c of [...(Array.isArray(value.initContainers) ? value.initContainers : []), ...value.containers]) {
      if (!isObject(c)) continue;
      const paths = (Array.isArray(c.volumeMounts) ? c.volumeMounts : []).map((m) => (isObject(m) ? m.mountPath : undefined));
      const names = (Array.isArray(c.env) ? c.env : []).map((e) => (isObject(e) ? e.name : undefined));
      t.equal(new Set(paths).size, paths.length, `container "${String(c.name)}": no mount path twice`);
      t.equal(new Set(names).size, names.length, `container "${String(c.name)}": no variable twice`);
    }
  }
  for (const child of Object.values(value)) noDuplicates(child, t);
}

function golden(t: Test, file: string, actual: string | undefined): void {
  const url = new URL(file, DIR);
  if (UPDATE) {
    if (actual === undefined) rmSync(url, { force: true });
    else writeFileSync(url, actual);
    return;
  }
  if (actual === undefined) {
    t.notOk(existsSync(url), `${file} is stale: this case no longer produces it (UPDATE_GOLDEN=1 removes it)`);
    return;
  }
  if (!existsSync(url)) {
    t.fail(`${file} is missing: run with UPDATE_GOLDEN=1 and review it`);
    return;
  }
  t.equal(actual, readFileSync(url, 'utf8'), `${file} matches (UPDATE_GOLDEN=1 regenerates)`);
}

/** Cases where *which* ops are used matters, not only the result (STYLE.md: no whole-list rewrites). */
const OP_EXPECTATIONS: Record<string, (t: Test, ops: Operation[]) => void> = {
  'bare-pod': (t, ops) =>
    t.same(
      ops.map((o) => `${o.op} ${o.path}`),
      ['add /spec/volumes', 'add /spec/initContainers', 'add /spec/containers/0/volumeMounts', 'add /spec/containers/0/env', 'add /metadata/annotations'],
      'every missing array created once, whole',
    ),
  'init-containers': (t, ops) => {
    t.equal(ops.filter((o) => o.path.startsWith('/spec/initContainers/'))[0]?.path, '/spec/initContainers/0', 'explicit prepend');
    t.notOk(ops.some((o) => o.op !== 'add'), 'only add ops: theirs are never replaced');
  },
  'native-sidecar': (t, ops) => t.notOk(ops.some((o) => o.op !== 'add'), 'only add ops'),
  reinvoked: (t, ops) => {
    t.same(ops[0], { op: 'move', from: '/spec/initContainers/1', path: '/spec/initContainers/0' });
    t.notOk(ops.some((o) => o.op === 'replace' && o.path.startsWith('/spec/')), 'no replace on any container');
  },
  'ca-rotated': (t, ops) =>
    t.same(ops.map((o) => `${o.op} ${o.path}`), ['replace /spec/initContainers/0', 'replace /metadata/annotations/demomail~1status']),
  'already-injected': (t, ops) => t.same(ops, [], 'zero ops'),
  'injected-before-token-mount': (t, ops) => t.same(ops, [], 'zero ops: the previous version\'s injection still counts'),
  'annotation-keys': (t, ops) => t.equal(ops.at(-1)?.path, '/metadata/annotations/demomail~1status', 'escaped'),
  'ephemeral-containers': (t, ops) => t.notOk(ops.some((o) => o.path.includes('ephemeral')), 'ephemeral containers untouched'),
};

const expectationsRun = new Set<string>();

t.ok(cases.length >= 15, `at least 15 cases (${cases.length})`);

t.test('no orphan golden files', async (t) => {
  for (const file of files) {
    const suffix = GOLDEN_SUFFIXES.find((s) => file.endsWith(s));
    if (suffix) t.ok(cases.includes(file.slice(0, -suffix.length)), `${file} belongs to an input`);
    else t.ok(file.endsWith('.yaml'), `${file} is an input or a golden file`);
  }
});

for (const name of cases) {
  t.test(name, async (t) => {
    const text = readFileSync(new URL(`${name}.yaml`, DIR), 'utf8');
    const warnings: string[] = [];
    let output: string | undefined;
    let error: string | undefined;
    try {
      output = injectManifests(text, settings, { namespace: NAMESPACE, source: `${name}.yaml`, onWarning: (w) => warnings.push(w) });
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      error = `${err.message}\n`;
    }
    golden(t, `${name}.injected.yaml`, output);
    golden(t, `${name}.error.txt`, error);
    golden(t, `${name}.warnings.txt`, warnings.length > 0 ? `${warnings.join('\n')}\n` : undefined);

    if (error?.includes('invalid YAML')) return;
    const inputs = readManifestObjects(text);
    if (output !== undefined) {
      const outputs = readManifestObjects(output);
      t.equal(outputs.length, inputs.length, 'same number of objects');
      for (const object of outputs) validateAll(object, t);
      for (const object of outputs) noDuplicates(object, t);
      t.equal(injectManifests(output, settings, { namespace: NAMESPACE, source: 'second pass' }), output, 'second pass: same bytes');
      if (!/demomail\/inject: "true"/.test(text)) t.same(outputs, inputs, 'nothing opted in: semantically identical');
    }

    // The webhook's path, for a single Pod whose opt-in the offline command decides the same way.
    const pod = inputs[0];
    const label = isObject(pod) && isObject(pod.metadata) && isObject(pod.metadata.labels) ? pod.metadata.labels[POD_OPT_IN_LABEL] : undefined;
    if (inputs.length !== 1 || !isObject(pod) || pod.kind !== 'Pod' || (label !== 'true' && label !== 'false')) return;
    const request = JSON.parse(JSON.stringify(pod)) as JsonObject; // what arrives in request.object
    const answer = await viaWebhook(request, `golden-${name}`);
    if (error !== undefined) {
      t.throws(() => planInjection(request, NAMESPACE, settings, { requireOptInLabel: false }), InjectionRefused);
      t.equal(answer.allowed, false, 'the webhook denies it');
      try {
        planInjection(request, NAMESPACE, settings, { requireOptInLabel: false });
      } catch (err) {
        t.ok(error.includes((err as InjectionRefused).reason), 'same reason as demomail inject');
        t.ok(answer.message?.includes((err as InjectionRefused).reason), 'the denial carries the reason to kubectl');
      }
      return;
    }
    t.equal(answer.allowed, true, 'the webhook allows it');
    const plan = planInjection(request, NAMESPACE, settings, { requireOptInLabel: false });
    t.same(answer.ops, plan.action === 'inject' ? plan.ops : [], 'the webhook returns exactly the planned ops');
    OP_EXPECTATIONS[name]?.(t, answer.ops);
    expectationsRun.add(name);
    let patched = request;
    if (answer.ops.length > 0) {
      patched = jsonpatch.applyPatch(structuredClone(request), answer.ops, true, false).newDocument as JsonObject;
      if (plan.action === 'inject') t.same(plan.warnings, warnings.map((w) => w.replace(/^[^:]+:\d+: Pod [^:]+: /, '')), 'same warnings');
      const again = await viaWebhook(patched, `golden-${name}-again`);
      t.same(again.ops, [], 'webhook second pass: no patch');
    }
    t.doesNotThrow(() => new Pod(structuredClone(patched) as ConstructorParameters<typeof Pod>[0]).validate(), 'webhook result is a valid Pod');
    const offline = readManifestObjects(output ?? '')[0];
    t.equal(JSON.stringify(patched), JSON.stringify(offline), 'webhook and demomail inject: byte-identical JSON');
  });
}

t.test('every op expectation ran against a webhook-path case', async (t) => {
  for (const name of Object.keys(OP_EXPECTATIONS)) t.ok(expectationsRun.has(name), name);
});
