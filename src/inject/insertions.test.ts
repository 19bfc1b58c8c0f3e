import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { injectionSettings, settingsFrom } from '../config.js';
import { skeletonOf, withInsertions, type Fragment } from './insertions.js';
import type { MergeEdits } from './line-merge.js';
import { injectManifests, readManifestObjects } from './manifests.js';

const read = (fragment: string): Fragment => {
  const doc = parseDocument(fragment, { version: '1.1' });
  return { doc: doc.errors.length === 0 ? doc : undefined, toJS: (d) => d.toJS() };
};

/** What the text with `block` put before line `at` reads as, by the proof; undefined when not proved. */
function proved(text: string, at: number, block: string[], pure = true): unknown {
  const doc = parseDocument(text, { version: '1.1' });
  const skeleton = skeletonOf(doc, text, 0);
  if (!skeleton) return undefined;
  const edits: MergeEdits = { insertions: [{ at, lines: block }], pure };
  return withInsertions(doc.toJS(), skeleton, text.split('\n'), text, true, edits, read);
}

/** The same, by reading the merged text (what the fast path must agree with). */
function reread(text: string, at: number, block: string[]): unknown {
  const lines = text.split('\n');
  return parseDocument([...lines.slice(0, at), ...block, ...lines.slice(at)].join('\n'), { version: '1.1' }).toJS();
}

const pod = `spec:
  containers:
    - name: app
      args:
        - |
          env:
            - name: A
      env:
        - name: A
          value: "1"
        # a comment
        - name: B
    - name: sidecar
`;
const ours = ['        - name: OURS', '          value: x'];

t.test('a block between two items, or after the last, is proved', async (t) => {
  const lines = pod.split('\n');
  const afterA = lines.indexOf('        # a comment');
  t.same(proved(pod, afterA, ours), reread(pod, afterA, ours), 'between A and B, before the comment');
  const afterB = lines.indexOf('    - name: sidecar');
  t.same(proved(pod, afterB, ours), reread(pod, afterB, ours), 'after the last item, before a shallower line');
  t.equal((proved(pod, afterB, ours) as any).spec.containers[0].env[2].name, 'OURS');
  const runs = ['      volumeMounts:', '        - name: demomail-ca', '  volumes:', '    - name: demomail-ca'];
  t.same(proved(pod, lines.length - 1, runs), reread(pod, lines.length - 1, runs), 'runs into nested collections ending at one point');
  t.equal((proved(pod, lines.length - 1, runs) as any).spec.volumes[0].name, 'demomail-ca');
  // After `- name: sidecar`, a deeper `- name: OURS` would continue the plain scalar `sidecar`.
  t.equal(proved(pod, lines.length - 1, [...ours, ...runs]), undefined, 'a list item where no list ends');
});

t.test('the trap: a line inside a block scalar that reads like the anchor is never used', async (t) => {
  const lines = pod.split('\n');
  // `            - name: A` inside the literal scalar is the same text as the env entry's line.
  const inside = lines.indexOf('            - name: A');
  t.equal(proved(pod, inside, ['            - name: OURS']), undefined, 'inside the scalar: not proved');
  t.equal(proved(pod, inside, ours), undefined, 'not even at the indentation of a real list');
  t.equal(proved(pod, inside + 1, ['            - name: OURS']), undefined, 'its last line: deeper than any list ending there');
  // Right after the scalar, at the indentation of `args`, a block is an item of `args` (not of `env`).
  t.same(proved(pod, inside + 1, ours), reread(pod, inside + 1, ours), 'after the scalar: what re-reading says');
  t.equal((proved(pod, inside + 1, ours) as any).spec.containers[0].args[1].name, 'OURS');
  const plain = 'a:\n  - one\n    two\n  - three\n';
  t.equal(proved(plain, 2, ['  - x']), undefined, 'inside a multi-line plain scalar');
  const flow = 'a: [\n  b,\n  c]\n';
  t.equal(proved(flow, 2, ['  - x']), undefined, 'inside a flow collection');
  t.equal(proved(pod, lines.indexOf('        # a comment'), ['          - name: OURS']), undefined, 'deeper than the list');
  t.equal(proved(pod, lines.indexOf('        # a comment'), ['        name: OURS']), undefined, 'a map where the list is');
  t.equal(proved(pod, lines.indexOf('        # a comment'), ours, false), undefined, 'a merge that replaced lines');
  const keys = 'a:\n  b: 1\n  c: 2\n';
  t.equal(proved(keys, 2, ['  c: 3']), undefined, 'a key the map already has');
  t.same(proved(keys, 2, ['  d: 3']), { a: { b: 1, c: 2, d: 3 } }, 'a new key');
  const aliased = 'x: &e\n  - a\ny: *e\n';
  t.equal(proved(aliased, 2, ['  - b']), undefined, 'a document with an alias');
  const keep = 'a:\n  - |+\n    text\n\n  - b\n';
  t.equal(proved(keep, 3, ['  - x']), undefined, 'among the kept trailing lines of a block scalar');
  const deeper = 'a:\n  - b\n  # c\nd: 1\n';
  const absorbing = ['  - |', '    text'];
  t.same(proved(deeper, 2, absorbing), reread(deeper, 2, absorbing), 'the comment after a block scalar stays a comment');
  const deepComment = 'a:\n  - b\n      # deeper\nd: 1\n';
  t.same(proved(deepComment, 2, absorbing), reread(deepComment, 2, absorbing), 'a deeper comment after a block scalar becomes its text, in both');
});

t.test('injectManifests: a block scalar holding lines like the injected ones, LF and CRLF', async (t) => {
  const CA_PEM = readFileSync(new URL('../../test/fixtures/inject/ca/demomail-test-ca.pem', import.meta.url), 'utf8');
  const settings = injectionSettings(settingsFrom({}), CA_PEM);
  const script = `      - name: SSL_CERT_FILE
        value: /etc/demomail/ca-bundle.crt
      volumeMounts:
        - name: demomail-ca`;
  const text = `apiVersion: v1
kind: Pod
metadata:
  name: p
  labels:
    demomail/inject: "true"
spec:
  containers:
    - name: app
      image: busybox
      args:
        - |
${script.replace(/^/gm, '          ')}
      env:
        - name: MINE
          value: "1"
`;
  for (const eol of ['\n', '\r\n']) {
    const out = injectManifests(text.replace(/\n/g, eol), settings, { source: 'trap.yaml' });
    const [object] = readManifestObjects(out) as any[];
    const app = object.spec.containers[0];
    t.equal(app.args[0], `${script.replace(/^      /gm, '')}\n`, `${JSON.stringify(eol)}: the block scalar is unchanged`);
    t.same(
      app.env.map((e: { name: string }) => e.name).slice(0, 2),
      ['MINE', 'SSL_CERT_FILE'],
      `${JSON.stringify(eol)}: our variables after the user's`,
    );
    t.same(app.volumeMounts, [{ name: 'demomail-ca', mountPath: '/etc/demomail', readOnly: true }]);
    t.ok(out.split(eol).every((line) => !line.includes('\r') && !line.includes('\n')), 'one line ending throughout');
    t.ok(text.split('\n').every((line) => out.split(eol).includes(line)), 'every input line kept');
  }
});
