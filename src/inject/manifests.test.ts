import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { injectionSettings, settingsFrom, STATUS_ANNOTATION } from '../config.js';
import { injectManifests, readManifestObjects, ManifestError } from './manifests.js';
import { CaPemError } from './template.js';

const CA_PEM = readFileSync(new URL('../../test/fixtures/inject/ca/demomail-test-ca.pem', import.meta.url), 'utf8');
const settings = injectionSettings(settingsFrom({}), CA_PEM);
const inject = (text: string, namespace?: string, onWarning?: (w: string) => void): string =>
  injectManifests(text, settings, { source: 'app.yaml', namespace, onWarning });
// Test navigation of parsed manifests.
type Loose = { [k: string]: any };
const objects = (text: string): Loose[] => readManifestObjects(text) as Loose[];

const optedInPod = (extra = ''): string => `apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {demomail/inject: "true"}
spec:
  containers:
    - name: app
      image: busybox
${extra}`;

t.test('bad YAML: file, line and column, and what is wrong', async (t) => {
  t.throws(() => inject('kind: Pod\nmetadata:\n  name: [x\n'), { name: 'ManifestError', message: /^app\.yaml:\d+:\d+: invalid YAML \([A-Z_]+\): / });
  t.throws(() => inject('a: 1\na: 2\n'), { name: 'ManifestError', message: /^app\.yaml:2:1: invalid YAML \(DUPLICATE_KEY\)/ });
  t.throws(() => inject('---\nok: 1\n---\n\tbad: tab\n'), { message: /^app\.yaml:4:/ }, 'line counts across documents');
  t.ok(new ManifestError('x') instanceof Error);
});

t.test('refusals name file, line, kind, namespace/name and the reason', async (t) => {
  const list = `apiVersion: v1
kind: List
items:
  - kind: ConfigMap
    metadata: {name: c}
  - apiVersion: batch/v1
    kind: CronJob
    metadata: {name: nightly, namespace: ops}
    spec:
      schedule: "@daily"
      jobTemplate:
        spec:
          template:
            metadata: {labels: {demomail/inject: "true"}}
            spec:
              restartPolicy: Never
              containers:
                - name: demomail-ca-init
                  image: x
`;
  t.throws(() => inject(`# header\n${list}`), {
    name: 'ManifestError',
    message:
      'app.yaml:2: List items[1]: CronJob ops/nightly: pod template: container "demomail-ca-init" already exists and is not ours; rename it or set demomail/inject=false',
  });
});

t.test('workload kinds: the pod template is injected where it sits', async (t) => {
  const template = `metadata: {labels: {demomail/inject: "true"}}
    spec: {containers: [{name: app, image: busybox}]}`;
  const kinds: Array<[string, string, string[]]> = [
    ['apps/v1', 'Deployment', ['spec', 'template']],
    ['apps/v1', 'StatefulSet', ['spec', 'template']],
    ['apps/v1', 'DaemonSet', ['spec', 'template']],
    ['apps/v1', 'ReplicaSet', ['spec', 'template']],
    ['v1', 'ReplicationController', ['spec', 'template']],
    ['batch/v1', 'Job', ['spec', 'template']],
    ['v1', 'PodTemplate', ['template']],
  ];
  for (const [apiVersion, kind, path] of kinds) {
    const text =
      kind === 'PodTemplate'
        ? `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: w}\ntemplate:\n    ${template.replace(/\n {4}/g, '\n    ')}\n`
        : `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: w}\nspec:\n  template:\n    ${template}\n`;
    const [out] = objects(inject(text));
    const pod = path.reduce((node: Loose, key) => node[key], out!);
    t.equal(pod.spec.initContainers[0].name, 'demomail-ca-init', kind);
    t.ok(pod.metadata.annotations[STATUS_ANNOTATION], `${kind}: status on the template`);
  }
  const cron = `apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        ${template.replace(/\n {4}/g, '\n        ')}
`;
  const [out] = objects(inject(cron));
  t.equal(out!.spec.jobTemplate.spec.template.spec.initContainers[0].name, 'demomail-ca-init', 'CronJob');
  const typedList = `apiVersion: apps/v1\nkind: DeploymentList\nitems:\n  - kind: Deployment\n    metadata: {name: d}\n    spec:\n      template:\n        ${template.replace(/\n {4}/g, '\n        ')}\n`;
  t.equal(objects(inject(typedList))[0]!.items[0].spec.template.spec.initContainers.length, 1, 'DeploymentList');
});

t.test('opt-in by the pod (template) label only; namespaces as the webhook sees them', async (t) => {
  const plain = '# mine\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n';
  t.equal(inject(plain), plain, 'not opted in: byte-identical');
  const warnings: string[] = [];
  const excluded = optedInPod().replace('name: p', 'name: p\n  namespace: kube-system');
  t.equal(inject(excluded, undefined, (w) => warnings.push(w)), excluded, 'kube-system is never injected');
  t.equal(inject(optedInPod(), 'demomail', (w) => warnings.push(w)), optedInPod(), '--namespace decides for objects without one');
  t.same(warnings, [
    'app.yaml:1: Pod kube-system/p: opted in but not injected: namespace kube-system is never injected',
    'app.yaml:1: Pod demomail/p: opted in but not injected: namespace demomail is never injected',
  ], 'each skip of an opted-in pod is said on stderr');
  t.not(inject(optedInPod(), 'shop'), optedInPod());
  const deploy = `kind: Deployment\nmetadata: {name: d, namespace: demomail}\nspec:\n  template:\n    metadata: {labels: {demomail/inject: "true"}}\n    spec: {containers: [{name: a, image: b}]}\n`;
  t.equal(inject(deploy, 'shop'), deploy, "a template takes its workload's namespace");
});

t.test('opted in but not injectable: a warning, the document unchanged', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['kind: Rollout\nmetadata: {name: r}\nspec: {template: {metadata: {labels: {demomail/inject: "true"}}, spec: {containers: []}}}\n', /Rollout default\/r: opted in but not injected: kind Rollout is not one demomail inject handles/],
    ['kind: Deployment\nmetadata: {name: d}\nspec: {template: {metadata: {labels: {demomail/inject: "true"}}}}\n', /pod template: opted in but not injected: not a pod: spec.containers is missing/],
    ['kind: Deployment\nmetadata: {name: d, labels: {demomail/inject: "true"}}\nspec: {template: 3}\n', /opted in but not injected: its pod template is missing or not a map/],
    [optedInPod().replace('{demomail/inject: "true"}', '{demomail/inject: true}'), /label demomail\/inject is true \(a boolean, not a string\)/],
  ];
  for (const [text, message] of cases) {
    const warnings: string[] = [];
    t.equal(inject(text, undefined, (w) => warnings.push(w)), text, 'unchanged');
    t.match(warnings, [message]);
  }
});

t.test('warnings go to onWarning with file and object', async (t) => {
  const warnings: string[] = [];
  inject(optedInPod('      env: [{name: SSL_CERT_FILE, value: /mine.pem}]\n'), 'shop', (w) => warnings.push(w));
  t.same(warnings, [
    'app.yaml:1: Pod shop/p: container "app" sets SSL_CERT_FILE itself (a literal value); kept, so clients reading it may not trust the demomail CA',
  ]);
});

t.test('documents without an injection come out byte for byte', async (t) => {
  for (const text of ['', '---\n---\n', '# only a comment\n', '--- just a string\n---\n- a\n- b\n', 'a: 1\n...\n', 'a: [1,2]']) {
    t.equal(inject(text), text, JSON.stringify(text));
  }
  const untouched = [
    '%YAML 1.1\n# leading comment\n--- # on the marker\nkind: ConfigMap\nmetadata:   {name: c}\ndata:\n  mode: "0644"\n  yes: \'on\'\n  text: >\n    folded\n    lines\n\n...\n',
    '---\n\n# an empty document follows\n---\n',
    'kind: Service\r\nmetadata:\r\n    name: s   # four spaces, CRLF\r\nspec:\r\n    ports:\r\n    - port: 80\r\n',
  ];
  const last = '---\nkind: Secret\nstringData: {a: b}';
  // A `%YAML` directive may only follow a document that ends with `...`.
  const after = untouched.slice(1).join('');
  const text = `${untouched.join('')}---\n${optedInPod()}${after}${last}`;
  const out = inject(text, 'shop');
  t.ok(out.startsWith(`${untouched.join('')}---\n`), 'documents before the injected one: same bytes');
  t.ok(out.endsWith(after + last), 'documents after it: same bytes, no newline added at the end');
  t.equal(inject(out, 'shop'), out, 'second pass: same bytes');
});

t.test('an injected document keeps every comment, blank line and its line endings', async (t) => {
  const text = `# top
apiVersion: v1
kind: Pod # kind
metadata:
  name: p

  labels:
    # opt in
    demomail/inject: "true"
spec:
  # nodeSelector:
  #   disktype: ssd
  containers:
  - name: app   # flush list
    image: busybox
    args: ["a", 'b']   # flow
    env:
    - name: TEXT
      value: >-
        folded
        text
    # - name: DEBUG
    #   value: "1"
# bottom
`;
  const out = inject(text, 'shop');
  const kept = (s: string): string[] => s.split('\n').filter((line) => !out.includes(line));
  t.same(kept(text), [], 'every line of the input is in the output');
  t.match(out, /\n  - name: app   # flush list\n    image: busybox\n    args: \["a", 'b'\]   # flow\n/, 'untouched lines as written');
  t.match(out, /\n    volumeMounts:\n    - name: demomail-ca\n/, 'new lines follow the flush list style');
  const crlf = inject(text.replace(/\n/g, '\r\n'), 'shop');
  t.equal(crlf, out.replace(/\n/g, '\r\n'), 'CRLF in, CRLF out, same content');
});

t.test('documents copied without being read as JSON: only those that cannot matter', async (t) => {
  // The opt-in label spelled so that its text never shows `demomail/inject`, or reached through
  // an alias or a merge key: still injected (the copy-only shortcut must never skip a template).
  const spellings: Record<string, string> = {
    'escaped slash': '{"demomail\\/inject": "true"}',
    'hex escape': '{"demomail\\x2Finject": "true"}',
    'unicode escape': '{"demomail\\u002finject": "true"}',
  };
  for (const [name, labels] of Object.entries(spellings)) {
    const out = inject(`kind: ConfigMap\n---\nkind: Pod\nmetadata:\n  name: p\n  labels: ${labels}\nspec:\n  containers: [{name: a, image: b}]\n`);
    t.equal((objects(out)[1] as Loose).spec.initContainers[0].name, 'demomail-ca-init', `${name}: injected`);
  }
  const viaAlias = 'kind: Deployment\nmetadata:\n  name: d\n  labels: &l {demomail/inject: "true"}\nspec:\n  template:\n    metadata: {labels: *l}\n    spec:\n      containers: [{name: a, image: b}]\n';
  t.equal((objects(inject(viaAlias))[0] as Loose).spec.template.spec.initContainers[0].name, 'demomail-ca-init', 'label behind an alias: injected');
  const viaMerge = 'kind: Deployment\nmetadata:\n  name: d\nbase: &base\n  labels: {demomail/inject: "true"}\nspec:\n  template:\n    metadata:\n      <<: *base\n    spec:\n      containers:\n        - {name: a, image: b}\n';
  t.equal((objects(inject(viaMerge))[0] as Loose).spec.template.spec.initContainers[0].name, 'demomail-ca-init', 'label through a merge key: injected');
  // Untouched documents that only fail when read as JSON are still refused, as before.
  t.throws(() => inject('ok: 1\n---\na: *nowhere\n'), { name: 'ManifestError', message: /Unresolved alias/ });
  t.throws(() => inject('a:\n  <<: 5\n'), { name: 'ManifestError', message: /Merge sources/ });
  t.throws(() => inject('a: !!omap [{x: 1}, {x: 2}]\n'), { name: 'ManifestError', message: /^app\.yaml:1:4: .*duplicate keys/ });
  // A skip note needs the label too: a labelled document with an unknown kind is still read.
  const warnings: string[] = [];
  inject('kind: Rollout\nmetadata: {name: r, labels: {demomail/inject: "true"}}\n', undefined, (w) => warnings.push(w));
  t.match(warnings, [/Rollout default\/r: opted in but not injected: kind Rollout/]);
});

t.test('unusual shapes are injected, checked and stable', async (t) => {
  const pod = (metadata: string, spec: string): string => `kind: Pod\n${metadata}${spec}`;
  const cases: Record<string, string> = {
    directive: `%YAML 1.1\n---\n${pod('metadata: {name: p, labels: {demomail/inject: "true"}}\n', 'spec: {containers: [{name: a, image: b}]}\n')}...\n`,
    'keep chomping': pod('metadata:\n  name: p\n  labels:\n    demomail/inject: "true"\n  annotations:\n    note: |+\n      kept\n\n', 'spec:\n  containers:\n  - name: a\n    image: b\n    args:\n    - |+\n      x\n\n'),
    'four spaces, "-   "': pod('metadata:\n    name: p\n    labels:\n        demomail/inject: "true"\n', 'spec:\n    containers:\n        -   name: a\n            image: b\n'),
    'flow lists': pod('metadata: {name: p, labels: {demomail/inject: "true"}}\n', 'spec:\n  containers:\n  - {name: a, image: b, env: [{name: X, value: y}], volumeMounts: []}\n'),
    'null list': pod('metadata:\n  name: p\n  labels: {demomail/inject: "true"}\n', 'spec:\n  volumes:\n  containers:\n  - name: a\n    image: b\n'),
    'byte order mark': `\uFEFF${pod('metadata:\n  name: p\n  labels: {demomail/inject: "true"}\n', 'spec:\n  containers:\n  - name: a\n    image: b\n')}`,
    tags: `--- !!map\n${pod('metadata:\n  name: p\n  labels: {demomail/inject: "true"}\n', 'spec: !!map\n  containers: !!seq\n  - name: a\n    image: b\n')}`,
  };
  for (const [name, text] of Object.entries(cases)) {
    const warnings: string[] = [];
    const out = injectManifests(text, settings, { source: 'app.yaml', namespace: 'shop', onWarning: (w) => warnings.push(w) });
    t.same(warnings, [], `${name}: no fallback warning`);
    const [pod] = objects(out);
    t.equal(pod!.spec.initContainers[0].name, 'demomail-ca-init', `${name}: injected`);
    t.equal(inject(out, 'shop'), out, `${name}: second pass, same bytes`);
  }
});

t.test('aliases: each container gets our mount and variables once; untouched aliases stay', async (t) => {
  const text = optedInPod().replace(
    '    - name: app\n      image: busybox\n',
    `    - name: app
      image: busybox
      securityContext: &sc {runAsNonRoot: true}
      volumeMounts: &mounts [{name: data, mountPath: /data}]
      env: &env [{name: A, value: a}]
    - name: b
      image: busybox
      securityContext: *sc
      volumeMounts: *mounts
      env: *env
`,
  );
  const out = inject(text, 'shop');
  const [pod] = objects(out);
  for (const c of pod!.spec.containers) {
    t.same(c.volumeMounts.map((m: Loose) => m.mountPath), ['/data', '/etc/demomail'], `${c.name}: mounts`);
    t.equal(c.env.filter((e: Loose) => e.name === 'SSL_CERT_FILE').length, 1, `${c.name}: SSL_CERT_FILE once`);
    t.equal(c.env[0].name, 'A', `${c.name}: the shared variable kept`);
  }
  t.match(out, /securityContext: \*sc\n/, 'an alias nothing writes through stays an alias');
  t.notMatch(out, /\*mounts|\*env/, 'aliases written through became copies');
  t.equal(inject(out, 'shop'), out, 'second pass: same bytes');
});

t.test('a 2 MB file of many documents stays fast', async (t) => {
  const deployment = (i: number, optIn: boolean): string => `# deployment ${i}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${i}
  namespace: shop
spec:
  template:
    metadata:
      labels:
        app: app-${i}${optIn ? '\n        demomail/inject: "true"' : ''}
    spec:
      containers:
        - name: app
          image: registry.example.com/app:${i}
          env:
${Array.from({ length: 80 }, (_, j) => `            - name: VAR_${j}\n              value: "value ${j} of app ${i}"  # why ${j}\n`).join('')}`;
  const docs: string[] = [];
  for (let i = 0, size = 0; size < 2_000_000; i++) {
    docs.push(deployment(i, i % 8 === 0));
    size += docs.at(-1)!.length + 4;
  }
  const text = docs.join('---\n');
  // Against a bare parse of the same text in the same run: wall-clock limits flake on a busy machine.
  let started = performance.now();
  parseAllDocuments(text);
  const parseMs = performance.now() - started;
  started = performance.now();
  const out = inject(text, 'shop');
  const ms = performance.now() - started;
  t.comment(`${docs.length} documents, ${(text.length / 1e6).toFixed(1)} MB: ${ms.toFixed(0)} ms (a bare parse: ${parseMs.toFixed(0)} ms)`);
  t.ok(ms < 6 * parseMs, 'within 6 times a bare parse (bench/inject.ts measures it properly)');
  t.equal(objects(out).filter((d) => d.spec.template.metadata.annotations).length, Math.ceil(docs.length / 8), 'every opted-in one injected');
});

t.test('YAML 1.1 as the API server reads it, written back unambiguously', async (t) => {
  const text = optedInPod(`      env:
        - {name: A, value: "yes"}
        - {name: B, value: "0644"}
        - {name: C, value: "2024-06-01"}
        - {name: D, value: "12:30"}
  activeDeadlineSeconds: 12345678901234567890
  volumes:
    - name: v
      configMap: {name: v, defaultMode: 0644}
`);
  const [input] = objects(text);
  t.equal(input!.spec.volumes[0].configMap.defaultMode, 0o644, '0644 is octal, as in go-yaml');
  t.equal(input!.spec.activeDeadlineSeconds, 12345678901234567890n, 'out-of-range integers stay exact');
  const out = inject(text);
  t.match(out, /value: "yes"\}\n/);
  t.match(out, /value: "0644"\}\n/);
  t.match(out, /value: "2024-06-01"\}\n/);
  t.match(out, /value: "12:30"\}\n/);
  t.match(out, /activeDeadlineSeconds: 12345678901234567890\n/);
  t.match(out, /defaultMode: 0644\}\n/, 'as written');
  const [after] = objects(out);
  t.same(after!.spec.containers[0].env.slice(0, 4), input!.spec.containers[0].env);
  t.equal(after!.spec.volumes[0].configMap.defaultMode, 0o644);
  t.equal(inject(out), out, 'second pass: same bytes');
  t.same(objects('a: &x {b: 1}\nc: *x\nd: 12:30\ne: 2024-06-01\n'), [{ a: { b: 1 }, c: { b: 1 }, d: '12:30', e: '2024-06-01' }]);
});

t.test('a bad CA is reported as such, not as a manifest problem', async (t) => {
  const bad = injectionSettings(settingsFrom({}), 'not a pem');
  t.throws(() => injectManifests(optedInPod(), bad, { source: 'x' }), CaPemError);
});
