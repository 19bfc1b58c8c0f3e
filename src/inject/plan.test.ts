import t from 'tap';
import { readFileSync } from 'node:fs';
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { injectionSettings, settingsFrom, STATUS_ANNOTATION, type InjectionSettings } from '../config.js';
import { planInjection, escapePointer, containsDesired, InjectionRefused, type JsonObject, type InjectionPlan } from './plan.js';
import { caFingerprint, CaPemError, desiredEnv } from './template.js';

const CA_PEM = readFileSync(new URL('../../test/fixtures/inject/ca/demomail-test-ca.pem', import.meta.url), 'utf8');
const CA2_PEM = readFileSync(new URL('../../test/fixtures/inject/ca/demomail-test-ca-2.pem', import.meta.url), 'utf8');
// `openssl x509 -in demomail-test-ca.pem -outform DER | sha256sum`
const CA_SHA256 = 'sha256:f4d584f4dc2eaa8ee06f77a72ef770a1517e9a8b23b4f2e9a63546cacd270b0c';
const settings = injectionSettings(settingsFrom({}), CA_PEM);
/** kubernetes plugin/pkg/admission/serviceaccount: DefaultAPITokenMountPath. */
const SA_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

function pod(spec: JsonObject, metadata: JsonObject = { name: 'web', namespace: 'shop' }): JsonObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec };
}
const app = (name = 'app', extra: JsonObject = {}): JsonObject => ({ name, image: 'example/app:1', ...extra });

function injected(plan: InjectionPlan): { ops: Operation[]; warnings: string[] } {
  if (plan.action !== 'inject') throw new Error(`expected inject, got skip: ${plan.reason}`);
  return plan;
}
function apply(doc: JsonObject, ops: Operation[]): JsonObject {
  return jsonpatch.applyPatch(structuredClone(doc), ops, true, false).newDocument as JsonObject;
}
function injectOnce(doc: JsonObject, s: InjectionSettings = settings, ns = 'shop'): { result: JsonObject; ops: Operation[]; warnings: string[] } {
  const { ops, warnings } = injected(planInjection(doc, ns, s));
  return { result: apply(doc, ops), ops, warnings };
}
function spec(doc: JsonObject): { [k: string]: any } /* test navigation of a known shape */ {
  return doc.spec as { [k: string]: any };
}

t.test('skips what is not an opted-in pod', async (t) => {
  const cases: Array<[string, unknown, string | undefined, boolean, RegExp]> = [
    ['not an object', 'nope', 'shop', false, /not a JSON object/],
    ['array', [], 'shop', false, /not a JSON object/],
    ['other kind', { kind: 'Deployment', spec: { containers: [] } }, 'shop', false, /Deployment is not a Pod/],
    ['no containers', { kind: 'Pod', spec: {} }, 'shop', false, /spec.containers is missing/],
    ['opt-out label', pod({ containers: [app()] }, { name: 'web', labels: { 'demomail/inject': 'false' } }), 'shop', false, /demomail\/inject=false/],
    ['own namespace (request)', pod({ containers: [app()] }, { name: 'web' }), 'demomail', false, /namespace demomail is never injected/],
    ['kube-system (metadata)', pod({ containers: [app()] }, { name: 'x', namespace: 'kube-system' }), 'other', false, /kube-system/],
    ['offline without label', pod({ containers: [app()] }), 'shop', true, /no label demomail\/inject=true/],
    ['offline with other label value', pod({ containers: [app()] }, { labels: { 'demomail/inject': 'yes' } }), 'shop', true, /no label/],
  ];
  for (const [name, input, ns, requireOptInLabel, reason] of cases) {
    const plan = planInjection(input as JsonObject, ns, settings, { requireOptInLabel });
    t.equal(plan.action, 'skip', name);
    if (plan.action === 'skip') t.match(plan.reason, reason, name);
  }
  const labelled = pod({ containers: [app()] }, { name: 'web', labels: { 'demomail/inject': 'true' } });
  t.equal(planInjection(labelled, 'shop', settings, { requireOptInLabel: true }).action, 'inject', 'offline with label');
  t.equal(planInjection(pod({ containers: [app()] }), 'shop', settings).action, 'inject', 'webhook: the API server already filtered');
});

t.test('bare pod: each missing array is created once, whole', async (t) => {
  const bare = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bare', namespace: 'shop' }, spec: { containers: [app()] } };
  const { result, ops } = injectOnce(bare);
  t.same(
    ops.map((o) => `${o.op} ${o.path}`),
    [
      'add /spec/volumes',
      'add /spec/initContainers',
      'add /spec/containers/0/volumeMounts',
      'add /spec/containers/0/env',
      'add /metadata/annotations',
    ],
  );
  const s = spec(result);
  t.same(s.volumes, [{ name: 'demomail-ca', emptyDir: { medium: 'Memory', sizeLimit: '2Mi' } }]);
  t.equal(s.initContainers.length, 1);
  const init = s.initContainers[0];
  t.equal(init.name, 'demomail-ca-init');
  t.equal(init.image, settings.image);
  t.equal(init.imagePullPolicy, settings.imagePullPolicy);
  t.same(init.args, ['install-ca', '--dir', '/etc/demomail']);
  t.same(init.env, [{ name: 'DEMOMAIL_CA_PEM', value: CA_PEM }]);
  t.same(
    init.volumeMounts,
    [
      { name: 'demomail-ca', mountPath: '/etc/demomail' },
      { name: 'demomail-ca', mountPath: SA_TOKEN_PATH, subPath: '.no-serviceaccount-token', readOnly: true },
    ],
    'read-write for the writer; an empty read-only directory where the ServiceAccount plugin would put the token',
  );
  t.same(init.securityContext, {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  t.notOk('runAsUser' in init.securityContext, 'no hard-coded UID');
  t.same(init.resources, { requests: { cpu: '10m', memory: '64Mi' }, limits: { cpu: '500m', memory: '128Mi' } });
  const c = s.containers[0];
  t.same(c.volumeMounts, [{ name: 'demomail-ca', mountPath: '/etc/demomail', readOnly: true }]);
  const env = Object.fromEntries((c.env as JsonObject[]).map((e) => [e.name, e.value ?? e.valueFrom]));
  t.same(env, {
    SSL_CERT_FILE: '/etc/demomail/ca-bundle.crt',
    REQUESTS_CA_BUNDLE: '/etc/demomail/ca-bundle.crt',
    NODE_EXTRA_CA_CERTS: '/etc/demomail/ca.crt',
    DEMOMAIL_SMTP_HOST: 'smtpdemo.demomail.svc.cluster.local',
    DEMOMAIL_SMTP_PORT: '465',
    DEMOMAIL_IMAP_HOST: 'imapdemo.demomail.svc.cluster.local',
    DEMOMAIL_IMAP_PORT: '993',
    DEMOMAIL_DOMAIN: 'demomail.test',
    SMTP_USER_SECRET: 'demomail-smtp',
    SMTP_PASSWD_SECRET: 'demomail-smtp',
    IMAP_USER_SECRET: 'demomail-imap',
    IMAP_PASSWD_SECRET: 'demomail-imap',
    IMAP_USER2_SECRET: 'demomail-imap2',
    DEMOMAIL_SMTP_USERNAME: { secretKeyRef: { name: 'demomail-smtp', key: 'username', optional: true } },
    DEMOMAIL_SMTP_PASSWORD: { secretKeyRef: { name: 'demomail-smtp', key: 'password', optional: true } },
    DEMOMAIL_IMAP_USERNAME: { secretKeyRef: { name: 'demomail-imap', key: 'username', optional: true } },
    DEMOMAIL_IMAP_PASSWORD: { secretKeyRef: { name: 'demomail-imap', key: 'password', optional: true } },
    DEMOMAIL_IMAP2_USERNAME: { secretKeyRef: { name: 'demomail-imap2', key: 'username', optional: true } },
    DEMOMAIL_IMAP2_PASSWORD: { secretKeyRef: { name: 'demomail-imap2', key: 'password', optional: true } },
  });
  t.notOk('PHP_INI_SCAN_DIR' in env, 'PHP only on request');
  const status = (result.metadata as JsonObject).annotations as JsonObject;
  t.equal(
    status[STATUS_ANNOTATION],
    `{"version":1,"caFingerprint":"${CA_SHA256}","volume":"demomail-ca","initContainer":"demomail-ca-init","initContainers":[],"containers":["app"],"phpIni":false}`,
  );
  t.same(injected(planInjection(result, 'shop', settings)).ops, [], 'second pass: no ops');
});

t.test('pod without metadata gets it created once', async (t) => {
  const { result, ops } = injectOnce({ spec: { containers: [app()] } });
  t.equal(ops.at(-1)?.path, '/metadata');
  t.ok(((result.metadata as JsonObject).annotations as JsonObject)[STATUS_ANNOTATION]);
  t.same(injected(planInjection(result, 'shop', settings)).ops, []);
});

t.test('null lists are treated as absent', async (t) => {
  const doc = pod({ containers: [app('a', { env: null, volumeMounts: null })], volumes: null, initContainers: null }, { name: 'n', annotations: null });
  const { result } = injectOnce(doc);
  t.equal(spec(result).volumes.length, 1);
  t.equal(spec(result).initContainers.length, 1);
  t.same(injected(planInjection(result, 'shop', settings)).ops, []);
});

t.test('existing init containers: ours prepended explicitly, theirs never replaced', async (t) => {
  const migrate = app('migrate', { command: ['migrate'] });
  const sidecar = app('proxy', { restartPolicy: 'Always', env: [{ name: 'A', value: '1' }] });
  const doc = pod({ initContainers: [migrate, sidecar], containers: [app()], volumes: [{ name: 'data', emptyDir: {} }] });
  const { result, ops } = injectOnce(doc);
  t.same(ops.filter((o) => o.path.startsWith('/spec/initContainers')).slice(0, 1), [
    { op: 'add', path: '/spec/initContainers/0', value: spec(result).initContainers[0] },
  ]);
  t.notOk(ops.some((o) => o.op === 'replace' || o.op === 'remove'), 'only adds');
  t.notOk(ops.some((o) => /^\/spec\/initContainers\/\d+$/.test(o.path) && o.path !== '/spec/initContainers/0'), 'no whole-element op on theirs');
  t.same(spec(result).initContainers.map((c: JsonObject) => c.name), ['demomail-ca-init', 'migrate', 'proxy']);
  t.same(spec(result).initContainers[1].command, ['migrate']);
  t.same(spec(result).initContainers[2].env[0], { name: 'A', value: '1' }, 'native sidecar keeps its env first');
  t.equal(spec(result).initContainers[2].restartPolicy, 'Always');
  t.ok(spec(result).initContainers[2].env.some((e: JsonObject) => e.name === 'SSL_CERT_FILE'), 'native sidecar injected');
  t.same(spec(result).volumes.map((v: JsonObject) => v.name), ['data', 'demomail-ca'], 'appended with /-');
  t.same(injected(planInjection(result, 'shop', settings)).ops, []);
});

t.test('reinvocation: another webhook prepended its init container → ours moved back first', async (t) => {
  const first = injectOnce(pod({ initContainers: [app('migrate')], containers: [app()] })).result;
  const other = structuredClone(first);
  spec(other).initContainers.unshift({ name: 'istio-init', image: 'istio/proxy' });
  const { result, ops } = injectOnce(other);
  t.same(ops[0], { op: 'move', from: '/spec/initContainers/1', path: '/spec/initContainers/0' });
  t.same(spec(result).initContainers.map((c: JsonObject) => c.name), ['demomail-ca-init', 'istio-init', 'migrate']);
  t.ok(ops.some((o) => o.path === '/spec/initContainers/1/env'), 'the newcomer gets env at its index after the move');
  t.same(injected(planInjection(result, 'shop', settings)).ops, []);
});

t.test('reinvocation: API-server defaults and other webhooks\' additions do not cause a replace', async (t) => {
  const first = injectOnce(pod({ containers: [app()] })).result;
  const defaulted = structuredClone(first);
  const init = spec(defaulted).initContainers[0];
  init.terminationMessagePath = '/dev/termination-log';
  init.env.push({ name: 'HTTP_PROXY', value: 'http://proxy:3128' });
  spec(defaulted).containers[0].terminationMessagePath = '/dev/termination-log';
  t.same(injected(planInjection(defaulted, 'shop', settings)).ops, []);
});

/**
 * What the ServiceAccount admission plugin does to a pod (v1.36, mountServiceAccountToken): every
 * init container and container without a mount whose mountPath equals the token path gets the
 * token volume's mount appended; the projected volume is added when some container needed it.
 */
function serviceAccountPlugin(doc: JsonObject): JsonObject {
  const out = structuredClone(doc);
  const s = spec(out);
  let needed = false;
  for (const c of [...(s.initContainers ?? []), ...s.containers]) {
    if ((c.volumeMounts ?? []).some((m: JsonObject) => m.mountPath === SA_TOKEN_PATH)) continue;
    c.volumeMounts = [...(c.volumeMounts ?? []), { name: 'kube-api-access-x7k2p', readOnly: true, mountPath: SA_TOKEN_PATH }];
    needed = true;
  }
  if (needed && !(s.volumes ?? []).some((v: JsonObject) => v.name === 'kube-api-access-x7k2p')) {
    s.volumes = [...(s.volumes ?? []), { name: 'kube-api-access-x7k2p', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }];
  }
  return out;
}

t.test('the ServiceAccount plugin changes nothing in our init container after our patch (no reinvocation)', async (t) => {
  // Admission order: the plugin runs first (user containers get the token), then we patch, then the
  // API server re-runs the plugins; only if that changes the pod are we called again.
  const created = serviceAccountPlugin(pod({ initContainers: [app('migrate')], containers: [app()] }));
  const ours = injectOnce(created).result;
  t.same(serviceAccountPlugin(ours), ours, 'second plugin pass: the pod is unchanged');
  const init = spec(ours).initContainers[0];
  t.notOk(
    init.volumeMounts.some((m: JsonObject) => String(m.name).startsWith('kube-api-access')),
    'our init container has no token',
  );
  t.same(
    [...spec(ours).initContainers.slice(1), ...spec(ours).containers].map((c: JsonObject) =>
      (c.volumeMounts as JsonObject[]).filter((m) => m.mountPath === SA_TOKEN_PATH).map((m) => m.name),
    ),
    [['kube-api-access-x7k2p'], ['kube-api-access-x7k2p']],
    "the user's containers keep their token",
  );
});

t.test('injected by the previous version (no mount of ours at the token path) → injected: no patch', async (t) => {
  const current = injectOnce(pod({ initContainers: [app('migrate')], containers: [app()] })).result;
  const previous = structuredClone(current);
  const mounts = spec(previous).initContainers[0].volumeMounts as JsonObject[];
  spec(previous).initContainers[0].volumeMounts = mounts.filter((m) => m.mountPath !== SA_TOKEN_PATH);
  t.same(injected(planInjection(previous, 'shop', settings)).ops, [], 'as `demomail inject` wrote it');
  // As the webhook sees it at CREATE: the plugin ran first and mounted the token into it.
  const admitted = serviceAccountPlugin(previous);
  t.same(injected(planInjection(admitted, 'shop', settings)).ops, [], 'with the API server\'s token mount');

  // A new CA replaces our init container whole: it gets our mount, the token mount goes, no path twice.
  const rolled = injectionSettings(settingsFrom({}), CA2_PEM);
  const { result } = injectOnce(admitted, rolled);
  const paths = (spec(result).initContainers[0].volumeMounts as JsonObject[]).map((m) => `${String(m.name)} ${String(m.mountPath)}`);
  t.same(paths, ['demomail-ca /etc/demomail', `demomail-ca ${SA_TOKEN_PATH}`]);
  t.same(serviceAccountPlugin(result), result, 'and the plugin leaves it alone');
  t.same(injected(planInjection(result, 'shop', rolled)).ops, []);
});

t.test('injected with an older CA → only our init container and the status are replaced', async (t) => {
  const old = injectOnce(pod({ initContainers: [app('migrate')], containers: [app()] })).result;
  const rolled = injectionSettings(settingsFrom({}), CA2_PEM);
  const { result, ops } = injectOnce(old, rolled);
  t.same(ops.map((o) => `${o.op} ${o.path}`), ['replace /spec/initContainers/0', 'replace /metadata/annotations/demomail~1status']);
  t.equal(spec(result).initContainers[0].env[0].value, CA2_PEM);
  t.match(((result.metadata as JsonObject).annotations as JsonObject)[STATUS_ANNOTATION], caFingerprint(CA2_PEM));
  t.same(injected(planInjection(result, 'shop', rolled)).ops, []);
});

t.test('variables the pod already sets are kept, with a warning for CA variables', async (t) => {
  const c = app('app', {
    env: [
      { name: 'SSL_CERT_FILE', value: '/etc/ssl/mine.pem' },
      { name: 'NODE_EXTRA_CA_CERTS', valueFrom: { configMapKeyRef: { name: 'x', key: 'y' } } },
      { name: 'DEMOMAIL_SMTP_HOST', value: 'mail.example' },
      { name: 'REQUESTS_CA_BUNDLE', value: '/etc/demomail/ca-bundle.crt' },
    ],
  });
  const { result, warnings, ops } = injectOnce(pod({ containers: [c] }));
  const env = spec(result).containers[0].env as JsonObject[];
  t.same(env.slice(0, 4), c.env, 'user entries first and unchanged');
  t.equal(env.filter((e) => e.name === 'SSL_CERT_FILE').length, 1);
  t.equal(env.filter((e) => e.name === 'DEMOMAIL_SMTP_HOST').length, 1);
  t.equal(env.length, desiredEnv(settings, false).length, 'each name once');
  t.ok(ops.filter((o) => o.path.includes('/env')).every((o) => o.path.endsWith('/env/-')));
  t.same(warnings, [
    'container "app" sets SSL_CERT_FILE itself (a literal value); kept, so clients reading it may not trust the demomail CA',
    'container "app" sets NODE_EXTRA_CA_CERTS itself (from valueFrom); kept, so clients reading it may not trust the demomail CA',
  ]);
  t.same(injected(planInjection(result, 'shop', settings)).ops, []);
});

t.test('envFrom and PHP warnings', async (t) => {
  const doc = pod(
    {
      containers: [
        app('php', { envFrom: [{ configMapRef: { name: 'config-mailserver' } }], env: [{ name: 'PHP_INI_SCAN_DIR', value: '/usr/local/etc/php/conf.d' }] }),
        app('nginx'),
      ],
    },
    { name: 'civi', annotations: { 'demomail/php-ini': 'true' } },
  );
  const { result, warnings } = injectOnce(doc);
  t.equal(warnings.length, 2);
  t.match(warnings[0], /container "php" sets PHP_INI_SCAN_DIR itself .*add :\/etc\/demomail\/php/);
  t.match(warnings[1], /container "php" uses envFrom: the injected variables .* take precedence/);
  const nginxEnv = spec(result).containers[1].env as JsonObject[];
  t.same(nginxEnv.find((e) => e.name === 'PHP_INI_SCAN_DIR'), { name: 'PHP_INI_SCAN_DIR', value: ':/etc/demomail/php' });
  t.match(((result.metadata as JsonObject).annotations as JsonObject)[STATUS_ANNOTATION], /"phpIni":true/);
});

t.test('refusals name the pod, the conflict and the fix', async (t) => {
  const cases: Array<[string, JsonObject, string | undefined, string]> = [
    [
      'user volume',
      pod({ containers: [app()], volumes: [{ name: 'demomail-ca', configMap: { name: 'x' } }] }, { name: 'web-7d9f', namespace: 'shop' }),
      'shop',
      'pod shop/web-7d9f: volume "demomail-ca" already exists and is not ours; rename it or set demomail/inject=false',
    ],
    [
      'user init container',
      pod({ containers: [app()], initContainers: [app('demomail-ca-init')] }, { generateName: 'web-7d9f-' }),
      'shop',
      'pod shop/web-7d9f-: init container "demomail-ca-init" already exists and is not ours; rename it or set demomail/inject=false',
    ],
    [
      'user container, even on an injected pod',
      pod({ containers: [app('demomail-ca-init')] }, { name: 'w', annotations: { 'demomail/status': '{}' } }),
      undefined,
      'pod w: container "demomail-ca-init" already exists and is not ours; rename it or set demomail/inject=false',
    ],
    [
      'mount path taken',
      pod({ containers: [app('app', { volumeMounts: [{ name: 'data', mountPath: '/etc/demomail/' }] })] }, { name: 'w', namespace: 'n' }),
      'n',
      'pod n/w: container "app" already mounts volume "data" at /etc/demomail; mount it elsewhere or set demomail/inject=false',
    ],
    [
      'duplicate volume on our pod',
      pod(
        { containers: [app()], volumes: [{ name: 'demomail-ca', emptyDir: {} }, { name: 'demomail-ca', emptyDir: {} }] },
        { name: 'w', namespace: 'n', annotations: { 'demomail/status': '{}' } },
      ),
      'n',
      'pod n/w: volume "demomail-ca" appears 2 times; remove the duplicates',
    ],
    ['malformed env', pod({ containers: [app('a', { env: 'x' })] }, { name: 'w', namespace: 'n' }), 'n', 'pod n/w: spec.containers[0].env is not a list; fix the manifest'],
    ['malformed container', pod({ containers: ['x'] }, { name: 'w', namespace: 'n' }), 'n', 'pod n/w: spec.containers[0] is not an object; fix the manifest'],
    ['malformed annotations', pod({ containers: [] }, { name: 'w', namespace: 'n', annotations: [] }), 'n', 'pod n/w: metadata.annotations is not a map; fix the manifest'],
  ];
  for (const [name, doc, ns, message] of cases) {
    t.throws(() => planInjection(doc, ns, settings), { name: 'InjectionRefused', message }, name);
  }
  try {
    planInjection(cases[0]![1], 'shop', settings);
  } catch (err) {
    t.ok(err instanceof InjectionRefused && err.name === 'InjectionRefused');
  }
});

t.test('our own leftovers on an injected pod are completed, not refused', async (t) => {
  const doc = pod(
    {
      containers: [app('app', { volumeMounts: [{ name: 'demomail-ca', mountPath: '/etc/demomail' }] })],
      volumes: [{ name: 'demomail-ca', emptyDir: {} }],
    },
    { name: 'w', namespace: 'n', annotations: { 'demomail/status': 'stale' } },
  );
  const { result, ops } = injectOnce(doc);
  t.same(ops.map((o) => `${o.op} ${o.path}`), [
    'replace /spec/volumes/0',
    'add /spec/initContainers',
    'replace /spec/containers/0/volumeMounts/0',
    'add /spec/containers/0/env',
    'replace /metadata/annotations/demomail~1status',
  ]);
  t.same(spec(result).containers[0].volumeMounts, [{ name: 'demomail-ca', mountPath: '/etc/demomail', readOnly: true }]);
});

t.test('controller-created pod: generateName, namespace from the request', async (t) => {
  const doc = pod({ containers: [app()] }, { generateName: 'web-7d9f-', labels: { app: 'web' } });
  t.equal(planInjection(doc, 'demomail', settings).action, 'skip', 'request namespace decides exclusion');
  t.equal(planInjection(doc, 'shop', settings).action, 'inject');
});

t.test('annotation keys with / and ~ are escaped; other annotations untouched', async (t) => {
  const annotations = { 'a/b': '1', 'c~d': '2', 'e~1f': '3', 'demomail/php-ini': 'false' };
  const { result, ops } = injectOnce(pod({ containers: [app()] }, { name: 'w', annotations }));
  t.same(ops.at(-1)?.path, '/metadata/annotations/demomail~1status');
  const out = (result.metadata as JsonObject).annotations as JsonObject;
  t.same(Object.keys(out), [...Object.keys(annotations), 'demomail/status']);
  t.equal(escapePointer('a~/b'), 'a~0~1b');
  t.equal(escapePointer('x~1y'), 'x~01y');
});

t.test('ephemeral containers are untouched', async (t) => {
  const eph = [{ name: 'debug', image: 'busybox', targetContainerName: 'app' }];
  const doc = pod({ containers: [app()], ephemeralContainers: eph });
  const { result, ops } = injectOnce(doc);
  t.same(spec(result).ephemeralContainers, eph);
  t.notOk(ops.some((o) => o.path.includes('ephemeral')));
});

t.test('deterministic: same input, same bytes; input never mutated', async (t) => {
  const doc = pod({ initContainers: [app('m')], containers: [app('a'), app('b', { env: [{ name: 'X', value: 'y' }] })] });
  const before = JSON.stringify(doc);
  const a = JSON.stringify(planInjection(doc, 'shop', settings));
  const b = JSON.stringify(planInjection(structuredClone(doc), 'shop', injectionSettings(settingsFrom({}), CA_PEM)));
  t.equal(a, b);
  t.equal(JSON.stringify(doc), before);
});

t.test('CA fingerprint: first CERTIFICATE block, clear errors otherwise', async (t) => {
  t.equal(caFingerprint(CA_PEM), CA_SHA256);
  t.equal(caFingerprint(CA_PEM + CA2_PEM), CA_SHA256, 'rollover bundle: the first one');
  t.equal(caFingerprint(CA2_PEM + CA_PEM), caFingerprint(CA2_PEM));
  t.throws(() => caFingerprint('-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n'), CaPemError);
  t.throws(() => caFingerprint('-----BEGIN CERTIFICATE-----\nnot base64 der\n-----END CERTIFICATE-----\n'), { name: 'CaPemError', message: /does not parse/ });
});

t.test('containsDesired: subset for objects, by name for named lists, exact otherwise', async (t) => {
  t.ok(containsDesired({ a: 1, b: 2 }, { a: 1 }));
  t.notOk(containsDesired({ a: 1 }, { a: 1, b: undefined }));
  t.ok(containsDesired([{ name: 'x', v: 1 }, { name: 'y' }], [{ name: 'x' }]));
  t.notOk(containsDesired([{ name: 'x', v: 2 }], [{ name: 'x', v: 1 }]));
  t.ok(containsDesired(['a', 'b'], ['a', 'b']));
  t.notOk(containsDesired(['a', 'b', 'c'], ['a', 'b']));
  t.notOk(containsDesired('a', ['a']));
  t.notOk(containsDesired(null, {}));
});

t.test('op values share no objects (no aliasing between containers, no YAML anchors)', async (t) => {
  const { ops } = injectOnce(pod({ initContainers: [app('m')], containers: [app('a'), app('b', { env: [] })] }));
  const seen = new Set<object>();
  let shared = 0;
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    if (seen.has(v)) shared++;
    seen.add(v);
    for (const child of Object.values(v)) walk(child);
  };
  for (const op of ops) walk((op as { value?: unknown }).value);
  t.equal(shared, 0);
});
