// Hostile input for the admission path (STYLE.md: fuzz beside the unit tests). Whatever JSON arrives,
// the decode → decide → encode pipeline answers with a 400 that says what is wrong, or with an
// AdmissionReview that echoes the uid; it never fails with an unexpected exception (a 500).
import fc from 'fast-check';
import t from 'tap';
import { civicrmPod } from '../../bench/fixtures.js';
import { injectionSettings, settingsFrom } from '../config.js';
import { createCertificateAuthority } from '../pki/certificates.js';
import { WebhookRequestError } from './errors.js';
import { admissionDecision, admissionReviewJson, admissionReviewResponse, parseAdmissionReview } from './review.js';

const settings = injectionSettings(settingsFrom({}), createCertificateAuthority({ commonName: 'fuzz CA' }).certPem);
const seed = Number(process.env['FC_SEED'] ?? 20261125);

/** The whole pipeline as the admission plugin runs it; returns the HTTP status it would answer. */
function answer(body: unknown): { status: number; uid?: string } {
  try {
    const request = parseAdmissionReview(body);
    const decision = admissionDecision(request, settings, true);
    const response = admissionReviewResponse(request.uid, decision);
    // The string the server sends is the object's JSON, byte for byte, whatever the uid holds.
    if (admissionReviewJson(request.uid, decision) !== JSON.stringify(response)) throw new Error(`admissionReviewJson differs from the response object for uid ${JSON.stringify(request.uid)}`);
    return { status: 200, uid: response.response.uid };
  } catch (err) {
    if (err instanceof WebhookRequestError) return { status: err.statusCode };
    throw err;
  }
}

const review = (object: unknown, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'fuzz-uid', operation: 'CREATE', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', object, ...extra },
});

// Replace one spot of a realistic pod with arbitrary JSON: the shapes a schema-checking API server would
// never send, but an attacker talking HTTPS to the webhook could.
const spots: Array<(pod: Record<string, any>, v: unknown) => void> = [ // any: we poke arbitrary JSON into a parsed pod
  (p, v) => (p['metadata'] = v),
  (p, v) => (p['metadata']['labels'] = v),
  (p, v) => (p['metadata']['annotations'] = v),
  (p, v) => (p['spec'] = v),
  (p, v) => (p['spec']['containers'] = v),
  (p, v) => (p['spec']['containers'][0] = v),
  (p, v) => (p['spec']['containers'][0]['env'] = v),
  (p, v) => (p['spec']['containers'][0]['env'][0] = v),
  (p, v) => (p['spec']['containers'][0]['volumeMounts'] = v),
  (p, v) => (p['spec']['initContainers'] = v),
  (p, v) => (p['spec']['volumes'] = v),
  (p, v) => (p['spec']['volumes'] = [v]),
  (p, v) => (p['spec']['containers'][0]['name'] = v),
];

t.test('arbitrary bodies: 400 or an answer echoing the uid, never an exception', async (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (body) => {
      const result = answer(body);
      return result.status === 400 || (result.status === 200 && typeof result.uid === 'string');
    }),
    { numRuns: 300, seed },
  );
  t.pass('300 arbitrary JSON bodies');
});

t.test('arbitrary request fields around a real pod', async (t) => {
  fc.assert(
    fc.property(
      fc.record({ operation: fc.jsonValue(), namespace: fc.jsonValue(), kind: fc.jsonValue(), resource: fc.jsonValue(), subResource: fc.jsonValue() }, { requiredKeys: [] }),
      (extra) => {
        const result = answer(review(structuredClone(civicrmPod()), extra));
        return result.status === 400 || result.uid === 'fuzz-uid';
      },
    ),
    { numRuns: 300, seed },
  );
  t.pass('300 envelopes');
});

t.test('arbitrary JSON in any spot of a real pod', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: spots.length - 1 }), fc.jsonValue({ maxDepth: 3 }), (spot, value) => {
      const pod = structuredClone(civicrmPod()) as Record<string, any>; // any: see spots
      spots[spot]!(pod, value);
      const result = answer(review(pod));
      return result.status === 400 || result.uid === 'fuzz-uid';
    }),
    { numRuns: 600, seed },
  );
  t.pass('600 damaged pods');
});
