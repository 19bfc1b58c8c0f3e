// Injection on pod CREATE through a real kube-apiserver: manifests/ applied as they ship, the real webhook
// (`node dist/src/cli.js webhook`) running as a local process.
//
// Route to the local webhook: each entry of the applied MutatingWebhookConfiguration `demomail` keeps its
// selectors and policies; only its clientConfig becomes `url: https://127.0.0.1:PORT/mutate` + caBundle
// (scripts/lib/local-webhook.ts, routeWebhookTo). So the API server's own filtering — the part this file
// is about — is exactly what production runs.
//
// Pods stay Pending (no scheduler, no kubelet): admission has run by the time they are stored.
import { waitFor } from '../../scripts/lib/wait.js';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { INIT_CONTAINER, INJECTED_VOLUME, MOUNT_PATH, STATUS_ANNOTATION } from '../../src/config.js';
import { repoRoot, type ControlPlane } from '../../scripts/lib/control-plane.js';
import { counterTotal, routeWebhookTo, startLocalWebhook, waitForWebhookInEffect, type LocalWebhook } from '../../scripts/lib/local-webhook.js';
import { controlPlaneFor, ensureBuilt } from '../helpers/control-plane.js';

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  securityContext?: Record<string, unknown>;
}
interface Pod {
  metadata: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: { kind: string }[] };
  spec: { initContainers?: Container[]; containers: Container[]; volumes?: { name: string; emptyDir?: Record<string, unknown> }[] };
}

const manifests = join(repoRoot(), 'manifests');
/** Where the ServiceAccount admission plugin mounts the API token. */
const TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A pod that satisfies Pod Security `restricted` by itself, so any refusal is about what was added. */
function restrictedPod(name: string, namespace: string, labels: Record<string, string> = {}, extra: Partial<Pod['spec']> = {}): Pod {
  const securityContext = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  };
  return {
    metadata: { name, namespace, labels: { app: name, ...labels } },
    spec: {
      // No token volume: the stored spec can then be compared with what was sent.
      ...({ automountServiceAccountToken: false } as object),
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/pause:3.10',
          env: [{ name: 'APP_MODE', value: 'demo' }],
          volumeMounts: [{ name: 'data', mountPath: '/data' }],
          securityContext,
        },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
      ...extra,
    },
  };
}

function manifest(pod: Pod): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Pod', ...pod });
}

function create(plane: ControlPlane, pod: Pod) {
  return plane.kubectl(['create', '-f', '-', '-o', 'json'], { input: manifest(pod) });
}

function createOk(plane: ControlPlane, pod: Pod): Pod {
  const r = create(plane, pod);
  if (r.code !== 0) throw new Error(`creating pod ${pod.metadata.namespace}/${pod.metadata.name} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Pod;
}

function stored(plane: ControlPlane, namespace: string, name: string): Pod {
  return plane.kubectlJson<Pod>(['get', 'pod', name, '-n', namespace]);
}

function namespace(plane: ControlPlane, name: string, labels: Record<string, string> = {}): void {
  plane.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }) });
}

/** The shape DESIGN §3 promises, checked on a stored pod. */
function assertInjected(t: Test, pod: Pod, mailCaPem: string): void {
  const init = pod.spec.initContainers ?? [];
  t.equal(init[0]?.name, INIT_CONTAINER, 'our init container comes first');
  t.match(init[0]?.args ?? [], ['install-ca']);
  t.same(
    init[0]?.volumeMounts,
    [
      { name: INJECTED_VOLUME, mountPath: MOUNT_PATH },
      { name: INJECTED_VOLUME, mountPath: TOKEN_PATH, subPath: '.no-serviceaccount-token', readOnly: true },
    ],
    'our init container: the CA volume, and an empty directory at the token path (so no API token)',
  );
  const caEnv = init[0]?.env?.find((e) => e.name === 'DEMOMAIL_CA_PEM')?.value ?? '';
  t.ok(caEnv !== '' && new X509Certificate(caEnv).fingerprint256 === new X509Certificate(mailCaPem).fingerprint256, 'the init container carries the mail CA');
  t.same(
    pod.spec.volumes?.find((v) => v.name === INJECTED_VOLUME),
    { name: INJECTED_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '2Mi' } },
    'in-memory CA volume',
  );
  for (const c of [...init.slice(1), ...pod.spec.containers]) {
    t.ok(c.volumeMounts?.some((m) => m.name === INJECTED_VOLUME && m.mountPath === MOUNT_PATH && m.readOnly === true), `${c.name} mounts ${MOUNT_PATH} read-only`);
    const env = new Map((c.env ?? []).map((e) => [e.name, e]));
    for (const name of ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS', 'DEMOMAIL_SMTP_HOST', 'DEMOMAIL_IMAP_HOST', 'SMTP_USER_SECRET']) {
      t.ok(env.has(name), `${c.name} has ${name}`);
    }
    t.equal(env.get('DEMOMAIL_SMTP_PORT')?.value, '465');
    t.match(env.get('DEMOMAIL_SMTP_PASSWORD')?.valueFrom, { secretKeyRef: { name: 'demomail-smtp', key: 'password', optional: true } });
  }
  t.ok(pod.metadata.annotations?.[STATUS_ANNOTATION], 'status annotation recorded');
}

function assertUntouched(t: Test, got: Pod, sent: Pod): void {
  t.notOk(got.spec.initContainers, 'no init container');
  t.same(got.spec.volumes, sent.spec.volumes, 'volumes as sent');
  t.same(
    got.spec.containers.map((c) => ({ name: c.name, image: c.image, env: c.env, volumeMounts: c.volumeMounts })),
    sent.spec.containers.map((c) => ({ name: c.name, image: c.image, env: c.env, volumeMounts: c.volumeMounts })),
    'containers as sent',
  );
  t.same(got.metadata.labels, sent.metadata.labels, 'labels as sent');
  t.notOk(got.metadata.annotations?.[STATUS_ANNOTATION], 'no status annotation');
}


await t.test('injection through a real API server', async (t) => {
  const plane = await controlPlaneFor(t);
  if (!plane) return;
  ensureBuilt();
  const webhook: LocalWebhook = await startLocalWebhook();
  t.teardown(async () => {
    if (!t.passing()) process.stderr.write(`\n${webhook.logTail(60)}\n`);
    await webhook.stop();
  });

  plane.kubectlOk(['apply', '-k', manifests]);
  await routeWebhookTo(plane, webhook);
  namespace(plane, 'shop');
  namespace(plane, 'opted', { 'demomail/injection': 'enabled' });
  namespace(plane, 'strict', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  for (const ns of ['shop', 'opted', 'strict', 'demomail', 'kube-system']) await plane.waitForServiceAccount(ns);
  await waitForWebhookInEffect(plane, 'shop');

  await t.test('an opted-in pod is stored injected', async (t) => {
    const sent = restrictedPod('web', 'shop', { 'demomail/inject': 'true' }, {
      initContainers: [{ name: 'migrate', image: 'registry.k8s.io/pause:3.10', env: [{ name: 'SSL_CERT_FILE', value: '/mine.pem' }] }],
    });
    createOk(plane, sent);
    const pod = stored(plane, 'shop', 'web');
    assertInjected(t, pod, webhook.mailCaPem);
    t.same(pod.spec.initContainers?.map((c) => c.name), [INIT_CONTAINER, 'migrate'], "the user's init container keeps its place after ours");
    const migrate = pod.spec.initContainers?.[1];
    t.equal(migrate?.env?.filter((e) => e.name === 'SSL_CERT_FILE').length, 1, 'a variable the pod sets is not added twice');
    t.equal(migrate?.env?.find((e) => e.name === 'SSL_CERT_FILE')?.value, '/mine.pem', 'and not overridden');
    const app = pod.spec.containers[0];
    t.same(app?.env?.[0], { name: 'APP_MODE', value: 'demo' }, 'existing env first, unchanged');
    t.ok(app?.volumeMounts?.some((m) => m.name === 'data' && m.mountPath === '/data'), 'existing mount kept');
  });

  await t.test('a Deployment with an opted-in template: ReplicaSet-created pods are injected', async (t) => {
    const template = restrictedPod('shopfront', 'shop', { 'demomail/inject': 'true' });
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'shopfront', namespace: 'shop' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'shopfront' } },
        template: { metadata: { labels: template.metadata.labels }, spec: template.spec },
      },
    };
    plane.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(deployment) });
    const pods = await waitFor('2 shopfront pods', () => {
      const items = plane.kubectlJson<{ items: Pod[] }>(['get', 'pods', '-n', 'shop', '-l', 'app=shopfront']).items;
      return items.length === 2 ? items : undefined;
    });
    for (const pod of pods) {
      t.match(pod.metadata.generateName, /^shopfront-[a-z0-9]+-$/, 'made by the ReplicaSet (generateName, namespace from the request)');
      t.equal(pod.metadata.ownerReferences?.[0]?.kind, 'ReplicaSet');
      assertInjected(t, pod, webhook.mailCaPem);
    }
  });

  await t.test('replicas of one template arrive as the same review but for the uid: answered from memory, injected the same', async (t) => {
    // kubectl creates the six in one burst, so their reviews differ only in request.uid (the name is
    // generated after mutating admission). The answer is kept from the second sighting, so the third
    // onwards are answered from memory; managedFields' time has one-second resolution, so a second
    // boundary inside the burst can split it in two groups: at least 2 of 6 come from memory.
    const template = restrictedPod('replica', 'shop', { 'demomail/inject': 'true', app: 'replica' });
    const { name: _name, ...metadata } = template.metadata;
    const pod = { apiVersion: 'v1', kind: 'Pod', ...template, metadata: { ...metadata, generateName: 'replica-' } };
    const hitsBefore = counterTotal(await webhook.metrics(), 'demomail_webhook_answer_cache_hits_total');
    plane.kubectlOk(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: Array.from({ length: 6 }, () => pod) }) });
    const hits = counterTotal(await webhook.metrics(), 'demomail_webhook_answer_cache_hits_total') - hitsBefore;
    t.ok(hits >= 2 && hits <= 4, `${hits} of 6 answered from the answer cache (Go's encoding matches the envelope it looks for)`);
    const pods = plane.kubectlJson<{ items: Pod[] }>(['get', 'pods', '-n', 'shop', '-l', 'app=replica']).items;
    t.equal(pods.length, 6);
    const spec = (p: Pod) => JSON.stringify({ ...p.spec, nodeName: undefined });
    for (const p of pods) {
      assertInjected(t, p, webhook.mailCaPem);
      t.equal(spec(p), spec(pods[0]!), `${p.metadata.name}: the same spec as the first replica`);
      t.equal(p.metadata.annotations?.['demomail/status'], pods[0]!.metadata.annotations?.['demomail/status']);
    }
  });

  await t.test('namespace opt-in injects its pods; demomail/inject=false opts one out', async (t) => {
    const before = await webhook.requestCount();
    const out = restrictedPod('batch', 'opted', { 'demomail/inject': 'false' });
    assertUntouched(t, createOk(plane, out), out);
    t.equal(await webhook.requestCount(), before, 'the opted-out pod never reached the webhook');
    createOk(plane, restrictedPod('worker', 'opted'));
    assertInjected(t, stored(plane, 'opted', 'worker'), webhook.mailCaPem);
    t.equal(await webhook.requestCount(), before + 1, 'one request for the one opted-in pod');
  });

  await t.test('token automounted (the default): one webhook call, the token in every container but ours', async (t) => {
    // Issue 13: the ServiceAccount plugin re-runs after our patch and mounts the token into every container
    // without a mount at its path; had it done so in our init container, the pod would have changed after
    // our call and the API server would have called us again (reinvocationPolicy IfNeeded).
    const before = await webhook.requestCount();
    const sent = restrictedPod('with-token', 'shop', { 'demomail/inject': 'true' });
    delete (sent.spec as Record<string, unknown>)['automountServiceAccountToken'];
    createOk(plane, sent);
    t.equal(await webhook.requestCount(), before + 1, 'one request: no reinvocation');
    const pod = stored(plane, 'shop', 'with-token');
    assertInjected(t, pod, webhook.mailCaPem);
    const app = pod.spec.containers[0];
    t.ok(app?.volumeMounts?.some((m) => m.mountPath === TOKEN_PATH && m.name.startsWith('kube-api-access-')), 'the app still gets its token');
  });

  await t.test('a pod that did not opt in is stored exactly as sent, without a webhook call', async (t) => {
    const before = await webhook.requestCount();
    const sent = restrictedPod('plain', 'shop');
    createOk(plane, sent);
    assertUntouched(t, stored(plane, 'shop', 'plain'), sent);
    t.equal(await webhook.requestCount(), before);
  });

  await t.test('pods in demomail and kube-system never reach the webhook, even when labelled', async (t) => {
    const before = await webhook.requestCount();
    for (const ns of ['demomail', 'kube-system']) {
      const sent = restrictedPod('labelled', ns, { 'demomail/inject': 'true' });
      createOk(plane, sent);
      assertUntouched(t, stored(plane, ns, 'labelled'), sent);
    }
    // kube-system can also opt in by namespace label: still excluded.
    plane.kubectlOk(['label', 'namespace', 'kube-system', 'demomail/injection=enabled']);
    const sent = restrictedPod('labelled-ns', 'kube-system');
    createOk(plane, sent);
    assertUntouched(t, stored(plane, 'kube-system', 'labelled-ns'), sent);
    plane.kubectlOk(['label', 'namespace', 'kube-system', 'demomail/injection-']);
    t.equal(await webhook.requestCount(), before, 'request counter unchanged');
  });

  await t.test('kubectl create --dry-run=server -o yaml shows the injection and stores nothing', async (t) => {
    const r = plane.kubectl(['create', '--dry-run=server', '-o', 'yaml', '-f', '-'], {
      input: manifest(restrictedPod('preview', 'shop', { 'demomail/inject': 'true' })),
    });
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, new RegExp(`name: ${INIT_CONTAINER}`));
    t.match(r.stdout, /mountPath: \/etc\/demomail/);
    t.match(r.stdout, /demomail\/status:/);
    t.not(plane.kubectl(['get', 'pod', 'preview', '-n', 'shop']).code, 0, 'the dry-run pod was not stored');
  });

  await t.test('an injected pod is admitted under Pod Security restricted', async (t) => {
    const r = create(plane, restrictedPod('secure', 'strict', { 'demomail/inject': 'true' }));
    t.equal(r.code, 0, `admitted: ${r.stderr}`);
    t.notMatch(r.stderr, /violate PodSecurity/);
    assertInjected(t, stored(plane, 'strict', 'secure'), webhook.mailCaPem);
  });

  await t.test('webhook down: opted-in pods are refused (failurePolicy Fail), others unaffected', async (t) => {
    await webhook.stop({ keepDir: true });
    const refused = create(plane, restrictedPod('needs-ca', 'shop', { 'demomail/inject': 'true' }));
    t.not(refused.code, 0, 'opted-in pod refused');
    t.match(refused.stderr, /failed calling webhook "pod-label\.inject\.demomail\.io"/, 'the error names the webhook');
    t.not(plane.kubectl(['get', 'pod', 'needs-ca', '-n', 'shop']).code, 0, 'and it was not stored half-configured');
    const byNamespace = create(plane, restrictedPod('needs-ca-too', 'opted'));
    t.match(byNamespace.stderr, /failed calling webhook "namespace-label\.inject\.demomail\.io"/);
    const plain = restrictedPod('still-fine', 'shop');
    const r = create(plane, plain);
    t.equal(r.code, 0, `a pod that did not opt in is created: ${r.stderr}`);
    const optedOut = create(plane, restrictedPod('opted-out', 'opted', { 'demomail/inject': 'false' }));
    t.equal(optedOut.code, 0, `an opted-out pod in an opted-in namespace is created: ${optedOut.stderr}`);
  });
});
