import t from 'tap';
import { readFileSync } from 'node:fs';
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
  t.equal(inject(plain), '# mine\nkind: Pod\nmetadata: { name: p }\nspec: { containers: [ { name: a, image: b } ] }\n', 'not opted in: unchanged (comments kept)');
  const excluded = optedInPod().replace('name: p', 'name: p\n  namespace: kube-system');
  t.same(objects(inject(excluded)), objects(excluded), 'kube-system is never injected');
  t.same(objects(inject(optedInPod(), 'demomail')), objects(optedInPod()), '--namespace decides for objects without one');
  t.not(inject(optedInPod(), 'shop'), optedInPod());
  const deploy = `kind: Deployment\nmetadata: {name: d, namespace: demomail}\nspec:\n  template:\n    metadata: {labels: {demomail/inject: "true"}}\n    spec: {containers: [{name: a, image: b}]}\n`;
  t.same(objects(inject(deploy, 'shop')), objects(deploy), "a template takes its workload's namespace");
});

t.test('warnings go to onWarning with file and object', async (t) => {
  const warnings: string[] = [];
  inject(optedInPod('      env: [{name: SSL_CERT_FILE, value: /mine.pem}]\n'), 'shop', (w) => warnings.push(w));
  t.same(warnings, [
    'app.yaml:1: Pod shop/p: container "app" sets SSL_CERT_FILE itself (a literal value); kept, so clients reading it may not trust the demomail CA',
  ]);
});

t.test('documents: empty ones dropped, comment-only and non-objects kept, separators normalised', async (t) => {
  t.equal(inject(''), '');
  t.equal(inject('---\n---\n'), '');
  t.equal(inject('# only a comment\n'), '# only a comment\n');
  t.equal(inject('--- just a string\n---\n- a\n- b\n'), 'just a string\n---\n- a\n- b\n');
  const out = inject(`${optedInPod()}---\nkind: Service\nmetadata: {name: s}\n...\n`);
  t.equal(out.split(/^---$/m).length, 2, 'two documents');
  t.match(out, /\n---\nkind: Service\nmetadata: \{ name: s \}\n$/);
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
  t.match(out, /value: "yes"\n/);
  t.match(out, /value: "0644"\n/);
  t.match(out, /value: "2024-06-01"\n/);
  t.match(out, /value: "12:30"\n/);
  t.match(out, /activeDeadlineSeconds: 12345678901234567890\n/);
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
