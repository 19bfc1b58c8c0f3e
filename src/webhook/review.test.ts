import jsonpatch from 'fast-json-patch';
import t from 'tap';
import { admissionReview, civicrmPod, type Json } from '../../bench/fixtures.js';
import { injectionSettings, settingsFrom } from '../config.js';
import { createCertificateAuthority } from '../pki/certificates.js';
import { WebhookRequestError } from './errors.js';
import {
  admissionDecision,
  admissionAnswer,
  admissionReviewJson,
  answerBytes,
  admissionReviewResponse,
  type AdmissionDecision,
  isPodCreate,
  parseAdmissionReview,
  requestSubject,
  type AdmissionRequest,
} from './review.js';

const ca = createCertificateAuthority({ commonName: 'review test CA' });
const withCa = injectionSettings(settingsFrom({}), ca.certPem);
const withoutCa = injectionSettings(settingsFrom({}), '');

function requestOf(review: Json): AdmissionRequest {
  return parseAdmissionReview(review);
}

t.test('parseAdmissionReview refuses what is not a v1 AdmissionReview with a uid', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['null', null, /JSON object/],
    ['array', [], /JSON object/],
    ['a Pod', { apiVersion: 'v1', kind: 'Pod' }, /kind "Pod", expected "AdmissionReview"/],
    ['no kind', { apiVersion: 'admission.k8s.io/v1' }, /kind null/],
    ['v1beta1', { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'a' } }, /v1beta1.*admissionReviewVersions/],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /no "request"/],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }, /request\.uid/],
    ['numeric uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 7 } }, /request\.uid/],
    ['empty uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: '' } }, /request\.uid/],
  ];
  for (const [name, body, message] of cases) {
    const err = t.throws(() => parseAdmissionReview(body), WebhookRequestError, name) as unknown as WebhookRequestError;
    t.equal(err.statusCode, 400, name);
    t.match(err.message, message, name);
  }
  t.equal(parseAdmissionReview(admissionReview(civicrmPod(), { uid: 'u1' })).uid, 'u1');
});

t.test('isPodCreate', async (t) => {
  const table: Array<[string, Partial<AdmissionRequest>, boolean]> = [
    ['pod CREATE', { operation: 'CREATE', resource: { group: '', version: 'v1', resource: 'pods' } }, true],
    ['pod UPDATE', { operation: 'UPDATE', resource: { group: '', version: 'v1', resource: 'pods' } }, false],
    ['pods/binding', { operation: 'CREATE', resource: { group: '', resource: 'pods' }, subResource: 'binding' }, false],
    ['pods/ephemeralcontainers', { operation: 'UPDATE', resource: { group: '', resource: 'pods' }, subResource: 'ephemeralcontainers' }, false],
    ['deployments', { operation: 'CREATE', resource: { group: 'apps', resource: 'deployments' } }, false],
    ['a CRD called pods', { operation: 'CREATE', resource: { group: 'example.com', resource: 'pods' } }, false],
    ['only kind given', { operation: 'CREATE', kind: { group: '', version: 'v1', kind: 'Pod' } }, true],
  ];
  for (const [name, request, expected] of table) t.equal(isPodCreate({ uid: 'x', ...request }), expected, name);
});

t.test('admissionDecision', async (t) => {
  const pod = civicrmPod();
  const patch = admissionDecision(requestOf(admissionReview(pod)), withCa, true);
  if (patch.kind !== 'patch') throw new Error(`expected a patch, got ${patch.kind}`);
  const injected = jsonpatch.applyPatch(structuredClone(pod), patch.ops, true, false).newDocument as Json;
  t.same(admissionDecision(requestOf(admissionReview(injected)), withCa, true), { kind: 'allow', reason: 'already injected' }, 'second pass');

  t.match(admissionDecision(requestOf(admissionReview(pod, { operation: 'UPDATE' })), withCa, true), { kind: 'allow', reason: /not a pod CREATE \(UPDATE pods\)/ });
  const optOut = civicrmPod();
  ((optOut['metadata'] as Json)['labels'] as Json)['demomail/inject'] = 'false';
  t.match(admissionDecision(requestOf(admissionReview(optOut)), withCa, true), { kind: 'allow', reason: /opts the pod out/ });

  const conflict = civicrmPod();
  ((conflict['spec'] as Json)['volumes'] as Json[]).push({ name: 'demomail-ca', emptyDir: {} });
  t.match(admissionDecision(requestOf(admissionReview(conflict)), withCa, true), { kind: 'deny', code: 403, reason: 'Forbidden', message: /demomail-ca/ });

  t.test('without the CA: would-be injections are denied with 503, everything else still allowed', async (t) => {
    t.match(admissionDecision(requestOf(admissionReview(pod)), withoutCa, false), { kind: 'deny', code: 503, message: /not loaded the mail CA yet/ });
    t.match(admissionDecision(requestOf(admissionReview(conflict)), withoutCa, false), { kind: 'deny', code: 503 });
    t.match(admissionDecision(requestOf(admissionReview(optOut)), withoutCa, false), { kind: 'allow' });
    t.match(admissionDecision(requestOf(admissionReview(pod, { operation: 'UPDATE' })), withoutCa, false), { kind: 'allow' });
    const systemPod = civicrmPod();
    delete (systemPod['metadata'] as Json)['namespace'];
    t.match(admissionDecision(requestOf(admissionReview(systemPod, { namespace: 'kube-system' })), withoutCa, false), { kind: 'allow', reason: /never injected/ });
  });

  t.throws(() => admissionDecision(requestOf(admissionReview(undefined)), withCa, true), /request\.object is missing/);
});

t.test('admissionReviewResponse', async (t) => {
  t.same(admissionReviewResponse('u', { kind: 'allow', reason: 'x' }), {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'u', allowed: true },
  });
  const ops = [{ op: 'add' as const, path: '/metadata/annotations', value: { 'a/b~c': 'é' } }];
  const patched = admissionReviewResponse('u', { kind: 'patch', ops, warnings: ['w1'] });
  t.equal(patched.response.patchType, 'JSONPatch');
  t.same(JSON.parse(Buffer.from(patched.response.patch!, 'base64').toString('utf8')), ops, 'base64 of the JSON ops, UTF-8 safe');
  t.same(patched.response.warnings, ['w1']);
  t.notOk('warnings' in admissionReviewResponse('u', { kind: 'patch', ops, warnings: [] }).response);
  t.same(admissionReviewResponse('u', { kind: 'deny', code: 403, reason: 'Forbidden', message: 'm' }).response, {
    uid: 'u',
    allowed: false,
    status: { status: 'Failure', code: 403, reason: 'Forbidden', message: 'm' },
  });
});

t.test('admissionReviewJson is the response object as JSON, byte for byte', async (t) => {
  const ops = [{ op: 'add' as const, path: '/metadata/annotations', value: { 'a/b~c': 'é "q"' } }];
  const decisions: AdmissionDecision[] = [
    { kind: 'allow', reason: 'x' },
    { kind: 'patch', ops, warnings: ['w1', 'a "quoted" \\ warning\n'] },
    { kind: 'patch', ops, warnings: [] },
    { kind: 'patch', ops, warnings: [], opsJson: JSON.stringify(ops) },
    { kind: 'deny', code: 503, reason: 'ServiceUnavailable', message: 'm "q"' },
  ];
  for (const uid of ['u', 'uid with "quotes" and \\ and \u2028', 'é-ü-€-😀']) {
    for (const decision of decisions) {
      const json = JSON.stringify(admissionReviewResponse(uid, decision));
      t.equal(admissionReviewJson(uid, decision), json, `${decision.kind} ${uid}`);
      // What the route sends: the same bytes, built from the tail's bytes (as the answer cache holds them).
      t.ok(answerBytes(uid, admissionAnswer({ uid }, decision).tail).equals(Buffer.from(json)), `bytes: ${decision.kind} ${uid}`);
    }
  }
  const pod = civicrmPod();
  const decision = admissionDecision(requestOf(admissionReview(pod)), withCa, true);
  if (decision.kind !== 'patch') throw new Error('the fixture pod is injected');
  t.ok(decision.opsJson, 'the size check serialised the ops once');
  t.equal(admissionReviewJson('u', decision), JSON.stringify(admissionReviewResponse('u', { kind: 'patch', ops: decision.ops, warnings: decision.warnings })), 'a real pod');
});

t.test('requestSubject names the pod without its content', async (t) => {
  const pod = civicrmPod();
  t.same(requestSubject(requestOf(admissionReview(pod, { uid: 'u' }))), { uid: 'u', namespace: 'civicrm-demo', name: 'civicrm-web-7d9f8c6b5d-*' });
  (pod['metadata'] as Json)['name'] = 'web-0';
  delete (pod['metadata'] as Json)['namespace'];
  t.same(requestSubject(requestOf(admissionReview(pod, { uid: 'u', namespace: 'shop' }))), { uid: 'u', namespace: 'shop', name: 'web-0' });
  t.same(requestSubject({ uid: 'u' }), { uid: 'u', namespace: '', name: '' });
});

t.test('admissionAnswer: the metric, the log line and its level for each decision', async (t) => {
  const request = requestOf(admissionReview(civicrmPod(), { uid: 'u' }));
  const ops = [{ op: 'add' as const, path: '/metadata/labels', value: {} }];
  const table: Array<[AdmissionDecision, Partial<ReturnType<typeof admissionAnswer>>]> = [
    [{ kind: 'patch', ops, warnings: ['w'] }, { decision: 'patch', code: 200, level: 'info', message: 'pod injected', fields: { namespace: 'civicrm-demo', name: 'civicrm-web-7d9f8c6b5d-*', decision: 'inject', ops: 1, warnings: 1 } }],
    [{ kind: 'allow', reason: 'already injected' }, { decision: 'allow', code: 200, level: 'debug', message: 'allowed unchanged', fields: { namespace: 'civicrm-demo', name: 'civicrm-web-7d9f8c6b5d-*', decision: 'allow', reason: 'already injected' } }],
    [{ kind: 'deny', code: 403, reason: 'Forbidden', message: 'volume taken' }, { decision: 'deny', code: 403, level: 'warn', message: 'pod denied', fields: { namespace: 'civicrm-demo', name: 'civicrm-web-7d9f8c6b5d-*', decision: 'deny', code: 403, message: 'volume taken' } }],
  ];
  for (const [decision, expected] of table) {
    const answer = admissionAnswer(request, decision);
    t.match(answer, expected, decision.kind);
    t.notOk('uid' in answer.fields, 'the uid is added per request, not remembered');
    t.ok(answer.chars >= answer.tail.length, 'counts what it holds');
  }
});
