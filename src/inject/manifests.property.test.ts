// Hostile YAML for `demomail inject`: whatever text arrives, the command either prints YAML or stops
// with a ManifestError/CaPemError naming the source; it never dies with an unexpected exception.
import fc from 'fast-check';
import t from 'tap';
import { stringify } from 'yaml';
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
