// Hostile YAML for `demomail inject`: whatever text arrives, the command either prints YAML or stops
// with a ManifestError/CaPemError naming the source; it never dies with an unexpected exception.
import fc from 'fast-check';
import t from 'tap';
import { parseAllDocuments, stringify } from 'yaml';
import { civicrmPod } from '../../bench/fixtures.js';
import { injectionSettings, settingsFrom } from '../config.js';
import { createCertificateAuthority } from '../pki/certificates.js';
import { injectManifests, ManifestError } from './manifests.js';

const settings = injectionSettings(settingsFrom({}), createCertificateAuthority({ commonName: 'fuzz CA' }).certPem);
const seed = Number(process.env['FC_SEED'] ?? 20261125);

function outcome(text: string): 'ok' | 'refused' {
  try {
    injectManifests(text, settings, { source: 'fuzz.yaml' });
    return 'ok';
  } catch (err) {
    if (err instanceof ManifestError && err.message.includes('fuzz.yaml')) return 'refused';
    throw err;
  }
}

t.test('arbitrary text', async (t) => {
  fc.assert(fc.property(fc.string({ maxLength: 400 }), (text) => outcome(text) !== undefined), { numRuns: 400, seed });
  t.pass('400 strings');
});

t.test('arbitrary YAML documents, including pods with damaged fields', async (t) => {
  const kinds = fc.constantFrom('Pod', 'Deployment', 'CronJob', 'List', 'Job', 'ConfigMap', 42, null);
  fc.assert(
    fc.property(kinds, fc.jsonValue({ maxDepth: 3 }), fc.constantFrom('spec', 'metadata', 'items', 'template', 'containers'), (kind, value, key) => {
      const pod = structuredClone(civicrmPod({ optIn: true })) as Record<string, unknown>;
      const doc = { ...pod, kind, [key]: value };
      return outcome(`${stringify(doc)}---\n${stringify(pod)}`) !== undefined;
    }),
    { numRuns: 400, seed },
  );
  t.pass('400 documents');
});

// Byte stability for GitOps (issue 11): generated manifests with comments, blank lines, CRLF
// and documents that nothing opts in.
const withEnd = (eol: string) => (text: string) => text.replace(/\n/g, eol);
const inject = (text: string): string => injectManifests(text, settings, { source: 'fuzz.yaml', namespace: 'shop' });
const commentLine = fc.stringMatching(/^[ -~]{0,30}$/).map((text) => `# ${text}`);
/** A YAML text with comments or blank lines put between random lines, indented like the next line. */
const decorated = (text: string) =>
  fc.array(fc.tuple(fc.nat(), fc.option(commentLine, { nil: '' })), { maxLength: 12 }).map((inserts) => {
    const lines = text.split('\n');
    const added: string[] = [];
    // Only before a line that starts a key or an item (the manifests have no multi-line scalars).
    const slots = lines.map((line, i) => (/^\s*(- )?[A-Za-z_"'$-]+:( |$)|^\s*- /.test(line) ? i : -1)).filter((i) => i >= 0);
    for (const [at, comment] of inserts.sort((a, b) => b[0] - a[0])) {
      const i = slots[at % slots.length]!;
      const indent = /^\s*/.exec(lines[i]!)![0];
      const line = comment === '' ? '' : `${indent}${comment}`;
      lines.splice(i, 0, line);
      if (line !== '') added.push(line);
    }
    return { text: lines.join('\n'), added };
  });
const manifest = fc.record({
  optIn: fc.boolean(),
  kind: fc.constantFrom('Pod', 'Deployment', 'CronJob', 'ConfigMap'),
  indentSeq: fc.boolean(),
}).map(({ optIn, kind, indentSeq }) => {
  const pod = civicrmPod({ optIn, namespace: 'shop' }) as Record<string, unknown>;
  const template = { metadata: pod.metadata, spec: pod.spec };
  const object =
    kind === 'Pod'
      ? pod
      : kind === 'Deployment'
        ? { apiVersion: 'apps/v1', kind, metadata: { name: 'd', namespace: 'shop' }, spec: { template } }
        : kind === 'CronJob'
          ? { apiVersion: 'batch/v1', kind, metadata: { name: 'c' }, spec: { schedule: '@daily', jobTemplate: { spec: { template } } } }
          : { apiVersion: 'v1', kind, metadata: { name: 'c' }, data: { mode: '0644', on: 'yes', list: '[a, b]' } };
  return stringify(object, { indentSeq, lineWidth: 0 });
});

t.test('untouched documents come out byte for byte, whatever their comments and line endings', async (t) => {
  const untouched = manifest.filter((text) => !text.includes('demomail/inject: "true"'));
  fc.assert(
    fc.property(fc.array(untouched.chain(decorated), { minLength: 1, maxLength: 3 }), fc.constantFrom('\n', '\r\n'), fc.boolean(), (docs, eol, end) => {
      const text = withEnd(eol)(docs.map((d) => d.text).join('---\n')) + (end ? '...\n' : '');
      return inject(text) === text;
    }),
    { numRuns: 30, seed },
  );
  t.pass('30 files');
});

t.test('injected documents keep every comment; re-injection changes no byte', async (t) => {
  fc.assert(
    fc.property(manifest.chain(decorated), fc.constantFrom('\n', '\r\n'), ({ text, added }, eol) => {
      const input = withEnd(eol)(text);
      const out = inject(input);
      const lines = new Set(out.split(eol === '\r\n' ? '\r\n' : '\n'));
      for (const line of added) if (!lines.has(line)) throw new Error(`comment lost: ${JSON.stringify(line)}\n${out}`);
      if (inject(out) !== out) throw new Error('second pass changed bytes');
      // Comments change nothing the API server sees.
      const plain = inject(withEnd(eol)(text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n')));
      if (JSON.stringify(parseAllDocuments(plain).map((d) => d.toJS())) !== JSON.stringify(parseAllDocuments(out).map((d) => d.toJS()))) {
        throw new Error('comments changed the result');
      }
      return true;
    }),
    { numRuns: 25, seed },
  );
  t.pass('25 files');
});
