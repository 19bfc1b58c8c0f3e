// The webhook over real HTTPS: admission answers, HTTP errors, readiness, metrics, logs.
import jsonpatch from 'fast-json-patch';
import t from 'tap';
import { admissionReview, civicrmPod, type Json } from '../../bench/fixtures.js';
import { planInjection } from '../../src/inject/plan.js';
import { injectionSettings, settingsFrom } from '../../src/config.js';
import { httpsCall, postReview, serialOf, startWebhook, testPki } from './webhook-helpers.js';

function decodePatch(response: Record<string, unknown>): jsonpatch.Operation[] {
  return JSON.parse(Buffer.from(String(response['patch']), 'base64').toString('utf8')) as jsonpatch.Operation[];
}

t.test('admission over HTTPS', async (t) => {
  const { port, logs } = await startWebhook(t);

  t.test('opted-in pod: allowed with a JSONPatch that injects it, uid echoed', async (t) => {
    const pod = civicrmPod();
    const res = await postReview(port, admissionReview(pod, { uid: 'uid-inject-1' }));
    t.equal(res.status, 200);
    const body = res.json();
    t.equal(body['apiVersion'], 'admission.k8s.io/v1');
    t.equal(body['kind'], 'AdmissionReview');
    const response = body['response'] as Record<string, unknown>;
    t.equal(response['uid'], 'uid-inject-1');
    t.equal(response['allowed'], true);
    t.equal(response['patchType'], 'JSONPatch');
    const ops = decodePatch(response);
    t.ok(ops.length > 0, 'has ops');
    // validate=true: every op must apply to the pod exactly as sent.
    const injected = jsonpatch.applyPatch(structuredClone(pod), ops, true, false).newDocument as Json;
    const spec = injected['spec'] as { initContainers: Json[]; containers: Array<{ env: Json[]; volumeMounts: Json[] }>; volumes: Json[] };
    t.equal(spec.initContainers[0]!['name'], 'demomail-ca-init', 'our init container first');
    t.equal(spec.initContainers[1]!['name'], 'wait-for-db', 'user init container kept, second');
    t.ok(spec.volumes.some((v) => v['name'] === 'demomail-ca'));
    for (const container of spec.containers) {
      t.ok(container.volumeMounts.some((m) => m['name'] === 'demomail-ca' && m['mountPath'] === '/etc/demomail'));
      t.ok(container.env.some((e) => e['name'] === 'SSL_CERT_FILE'));
    }
    const annotations = (injected['metadata'] as { annotations: Record<string, string> }).annotations;
    t.ok(annotations['demomail/status'], 'status annotation');
    // The webhook and the offline path run the same function: same ops for the same pod.
    const offline = planInjection(pod, 'civicrm-demo', injectionSettings(settingsFrom({}), testPki().mailCa.certPem), { requireOptInLabel: false });
    t.same(offline.action === 'inject' ? offline.ops : [], ops, 'same ops as planInjection');
    // Second pass over the injected pod: allowed, no patch.
    const again = await postReview(port, admissionReview(injected, { uid: 'uid-inject-2' }));
    const againResponse = again.json()['response'] as Record<string, unknown>;
    t.equal(againResponse['uid'], 'uid-inject-2');
    t.equal(againResponse['allowed'], true);
    t.notOk('patch' in againResponse, 'no patch for an injected pod');
  });

  t.test('unlabelled pod (its namespace opted in; the API server selects) is injected', async (t) => {
    const res = await postReview(port, admissionReview(civicrmPod({ optIn: false }), { uid: 'u-ns-optin' }));
    const response = res.json()['response'] as Record<string, unknown>;
    t.equal(response['uid'], 'u-ns-optin');
    t.equal(response['patchType'], 'JSONPatch');
  });

  t.test('controller-created pod without metadata.namespace uses request.namespace', async (t) => {
    const pod = civicrmPod();
    delete (pod['metadata'] as Json)['namespace'];
    const res = await postReview(port, admissionReview(pod, { uid: 'uid-gen', namespace: 'shop' }));
    const response = res.json()['response'] as Record<string, unknown>;
    t.equal(response['allowed'], true);
    const ops = decodePatch(response);
    const expected = planInjection(pod, 'shop', injectionSettings(settingsFrom({}), testPki().mailCa.certPem));
    t.same(ops, expected.action === 'inject' ? expected.ops : undefined);
    // In the excluded namespace (our own) nothing is injected even if a request reaches us.
    const ours = await postReview(port, admissionReview(pod, { uid: 'uid-own-ns', namespace: 'demomail' }));
    t.notOk('patch' in (ours.json()['response'] as Json));
  });

  const unchanged: Array<[string, Json]> = [
    ['UPDATE of a pod', admissionReview(civicrmPod(), { operation: 'UPDATE', uid: 'u-update' })],
    ['DELETE of a pod', admissionReview(undefined, { operation: 'DELETE', uid: 'u-delete' })],
    ['a Deployment CREATE', admissionReview({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } }, { kind: 'Deployment', resource: 'deployments', group: 'apps', uid: 'u-deploy' })],
    ['a ConfigMap CREATE', admissionReview({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: {} }, { kind: 'ConfigMap', resource: 'configmaps', uid: 'u-cm' })],
  ];
  const optedOut = civicrmPod();
  ((optedOut['metadata'] as Json)['labels'] as Json)['demomail/inject'] = 'false';
  unchanged.push(['a pod labelled demomail/inject=false', admissionReview(optedOut, { uid: 'u-false' })]);
  const binding = admissionReview({ apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p' }, target: { kind: 'Node', name: 'n1' } }, { kind: 'Binding', uid: 'u-binding' });
  ((binding['request'] as Json)['subResource'] as unknown) = 'binding';
  unchanged.push(['a pods/binding CREATE', binding]);

  for (const [name, review] of unchanged) {
    t.test(`${name}: allowed without a patch`, async (t) => {
      const res = await postReview(port, review);
      t.equal(res.status, 200);
      const response = res.json()['response'] as Record<string, unknown>;
      t.equal(response['uid'], (review['request'] as Json)['uid']);
      t.equal(response['allowed'], true);
      t.notOk('patch' in response);
      t.notOk('patchType' in response);
    });
  }

  t.test('a pod that cannot be injected safely is denied with the reason (HTTP 200, allowed: false)', async (t) => {
    const pod = civicrmPod();
    ((pod['spec'] as Json)['volumes'] as Json[]).push({ name: 'demomail-ca', emptyDir: {} });
    const res = await postReview(port, admissionReview(pod, { uid: 'u-conflict' }));
    t.equal(res.status, 200);
    const response = res.json()['response'] as { uid: string; allowed: boolean; status: { code: number; message: string } };
    t.equal(response.uid, 'u-conflict');
    t.equal(response.allowed, false);
    t.equal(response.status.code, 403);
    t.match(response.status.message, /demomail-ca/);
  });

  const badRequests: Array<[string, { body: string; contentType?: string }, number, RegExp]> = [
    ['text/plain', { body: JSON.stringify(admissionReview(civicrmPod())), contentType: 'text/plain' }, 415, /application\/json/],
    ['application/x-www-form-urlencoded', { body: 'a=b', contentType: 'application/x-www-form-urlencoded' }, 415, /application\/json/],
    ['malformed JSON', { body: '{"apiVersion": "admission.k8s.io/v1", "kind": AdmissionReview}' }, 400, /not valid JSON/],
    ['empty body', { body: '' }, 400, /empty/],
    ['__proto__ body', { body: '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"p1","__proto__":{"isAdmin":true}}}' }, 400, /__proto__/],
    ['escaped __proto__', { body: '{"\\u005f_proto__":{"x":1}}' }, 400, /__proto__/],
    ['constructor.prototype body', { body: '{"constructor":{"prototype":{"polluted":true}}}' }, 400, /constructor/],
    ['missing request.uid', { body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { operation: 'CREATE' } }) }, 400, /request\.uid/],
    ['not an AdmissionReview', { body: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: {} }) }, 400, /AdmissionReview/],
    ['v1beta1 AdmissionReview', { body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }) }, 400, /admissionReviewVersions/],
    ['a JSON array', { body: '[1,2,3]' }, 400, /JSON object/],
    ['a pod CREATE without object', { body: JSON.stringify(admissionReview(undefined, { uid: 'no-object' })) }, 400, /request\.object/],
  ];
  for (const [name, call, status, message] of badRequests) {
    t.test(`${name} → ${status} with a helpful message`, async (t) => {
      const res = await httpsCall(port, call);
      t.equal(res.status, status);
      const body = res.json();
      t.equal(body['statusCode'], status);
      t.match(String(body['message']), message);
    });
  }

  t.test('the uid is echoed in error replies once known', async (t) => {
    const res = await httpsCall(port, { body: JSON.stringify(admissionReview(undefined, { uid: 'no-object-2' })) });
    t.equal(res.status, 400);
    t.equal(res.json()['uid'], 'no-object-2');
  });

  t.test('a 5 MiB pod is answered; an 8 MiB body gets 413', async (t) => {
    const big = civicrmPod();
    (big['metadata'] as { annotations: Json }).annotations['example.com/blob'] = 'a'.repeat(5 * 1024 * 1024);
    const ok = await postReview(port, admissionReview(big, { uid: 'big-5' }));
    t.equal(ok.status, 200);
    const response = ok.json()['response'] as Json;
    t.equal(response['uid'], 'big-5');
    t.equal(response['allowed'], true);
    t.ok(decodePatch(response).length > 0);

    const huge = civicrmPod();
    (huge['metadata'] as { annotations: Json }).annotations['example.com/blob'] = 'a'.repeat(8 * 1024 * 1024);
    const tooLarge = await postReview(port, admissionReview(huge, { uid: 'big-8' }));
    t.equal(tooLarge.status, 413);
    t.match(String(tooLarge.json()['message']), /larger than/);
  });

  t.test('GET /mutate is not a route; unknown paths 404', async (t) => {
    t.equal((await httpsCall(port, { path: '/mutate' })).status, 404);
    t.equal((await httpsCall(port, { path: '/nope' })).status, 404);
  });

  t.test('probes and metrics', async (t) => {
    t.equal((await httpsCall(port, { path: '/livez' })).status, 200);
    const ready = await httpsCall(port, { path: '/readyz' });
    t.equal(ready.status, 200, ready.body);
    const metrics = await httpsCall(port, { path: '/metrics' });
    t.equal(metrics.status, 200);
    t.match(metrics.headers['content-type'], /text\/plain/);
    const text = metrics.body;
    t.match(text, /demomail_webhook_requests_total\{code="200"\} [1-9]/);
    t.match(text, /demomail_webhook_requests_total\{code="400"\} [1-9]/);
    t.match(text, /demomail_webhook_requests_total\{code="413"\} 1/);
    t.match(text, /demomail_webhook_requests_total\{code="415"\} 2/);
    t.match(text, /demomail_webhook_injected_total [3-9]/);
    t.match(text, /demomail_webhook_skipped_total [5-9]/);
    t.match(text, /demomail_webhook_denied_total\{code="403"\} 1/);
    t.match(text, /demomail_webhook_errors_total\{reason="bad_request"\} [1-9]/);
    t.match(text, /demomail_webhook_errors_total\{reason="payload_too_large"\} 1/);
    t.match(text, /demomail_webhook_mutate_duration_seconds_bucket\{le="\+Inf"\} [1-9]/);
    t.match(text, /demomail_webhook_mutate_duration_seconds_count [1-9]/);
    t.match(text, /demomail_webhook_tls_reloads_total\{material="serving",result="success"\} 1/);
    t.match(text, /demomail_webhook_ready 1/);
  });

  t.test('replicas of one template (same review but for the uid): the same answer, each with its own uid, logged and counted', async (t) => {
    // As kube-apiserver encodes it (kind first) for a controller-created pod: generateName, no name.
    const pod = civicrmPod();
    delete (pod['metadata'] as Json)['name'];
    delete (pod['metadata'] as Json)['namespace'];
    (pod['metadata'] as Json)['generateName'] = 'civicrm-web-5f7c9d-';
    const { apiVersion: _apiVersion, kind: _kind, request } = admissionReview(pod, { uid: 'x' }) as { apiVersion: string; kind: string; request: Json };
    const goText = (uid: string): string => JSON.stringify({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: { ...request, uid } });
    const metricsBefore = await httpsCall(port, { path: '/metrics' });
    const injectedBefore = metricValue(metricsBefore, 'demomail_webhook_injected_total');
    const hitsBefore = metricValue(metricsBefore, 'demomail_webhook_answer_cache_hits_total');
    const uids = ['0c6f8c1e-0000-4000-8000-000000000001', '0c6f8c1e-0000-4000-8000-000000000002', '0c6f8c1e-0000-4000-8000-000000000003'];
    const answers: Awaited<ReturnType<typeof httpsCall>>[] = [];
    for (const uid of uids) answers.push(await httpsCall(port, { body: goText(uid) }));
    const first = answers[0]!.json()['response'] as Record<string, unknown>;
    t.equal(first['patchType'], 'JSONPatch');
    uids.forEach((uid, i) => {
      t.equal(answers[i]!.status, 200);
      t.equal(answers[i]!.body, answers[0]!.body.replace(uids[0]!, uid), `replica ${i + 1}: the first answer's bytes with its own uid`);
    });
    const expected = planInjection(pod, 'civicrm-demo', injectionSettings(settingsFrom({}), testPki().mailCa.certPem), { requireOptInLabel: false });
    t.same(decodePatch(answers[2]!.json()['response'] as Record<string, unknown>), expected.action === 'inject' ? expected.ops : [], 'the remembered patch is planInjection\'s');
    const metricsAfter = await httpsCall(port, { path: '/metrics' });
    t.equal(metricValue(metricsAfter, 'demomail_webhook_injected_total') - injectedBefore, 3, 'each replica counted');
    t.equal(metricValue(metricsAfter, 'demomail_webhook_answer_cache_hits_total') - hitsBefore, 1, 'the third from memory (an answer is kept from the second sighting)');
    for (const uid of uids) {
      const line = logs.lines().find((l) => l['uid'] === uid);
      t.match(line, { namespace: 'civicrm-demo', name: 'civicrm-web-5f7c9d-*', decision: 'inject', msg: 'pod injected' }, `a log line for ${uid}`);
    }
    // A change anywhere but the uid is a new review: in our own namespace (excluded) the same pod is not injected.
    const elsewhere = await httpsCall(port, { body: goText(uids[0]!).replace('"namespace":"civicrm-demo"', '"namespace":"demomail"') });
    t.notOk('patch' in (elsewhere.json()['response'] as Json), 'the excluded namespace gets its own answer');
    const denied = await httpsCall(port, { body: goText('0c6f8c1e-0000-4000-8000-000000000004').replace('"operation":"CREATE"', '"operation":"UPDATE"') });
    t.notOk('patch' in (denied.json()['response'] as Json), 'an UPDATE of the same pod is not injected');
  });

  t.test('logs: one line per admission with uid, namespace and name; no secrets', async (t) => {
    const lines = logs.lines();
    const injected = lines.find((l) => l['uid'] === 'uid-inject-1');
    t.ok(injected, 'a line for the injected pod');
    t.equal(injected?.['namespace'], 'civicrm-demo');
    t.equal(injected?.['name'], 'civicrm-web-7d9f8c6b5d-*');
    t.equal(injected?.['decision'], 'inject');
    const text = logs.text;
    const pki = testPki();
    t.notOk(text.includes('PRIVATE KEY'), 'no private key');
    t.notOk(text.includes(pki.serving.keyPem.split('\n')[1]!), 'no serving key material');
    t.notOk(text.includes(pki.mailCa.certPem.split('\n')[2]!), 'no CA PEM body');
    t.notOk(text.includes('k8s-demo-site-key'), 'no pod env value');
    t.notOk(text.includes('isAdmin'), 'no request body fragment');
  });
});

t.test('TLS: below 1.2 is refused', async (t) => {
  const { port } = await startWebhook(t);
  const { connect } = await import('node:tls');
  const error = await new Promise<Error | undefined>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: testPki().webhookCa.certPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
    socket.on('secureConnect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on('error', (err) => resolve(err));
  });
  t.ok(error, 'TLS 1.1 handshake fails');
  const modern = await httpsCall(port, { path: '/livez' });
  t.equal(modern.status, 200);
});

t.test('mail CA missing at start: not ready and opted-in pods denied, until the file appears', async (t) => {
  const { port, caVolume, server } = await startWebhook(t, { withCa: false });
  const notReady = await httpsCall(port, { path: '/readyz' });
  t.equal(notReady.status, 503);
  t.match(notReady.json()['reasons'], [/mail CA not loaded: .*does not exist/]);
  t.equal((await httpsCall(port, { path: '/livez' })).status, 200, 'still alive');

  const denied = await postReview(port, admissionReview(civicrmPod(), { uid: 'no-ca' }));
  const response = denied.json()['response'] as { uid: string; allowed: boolean; status: { code: number; message: string } };
  t.equal(response.uid, 'no-ca');
  t.equal(response.allowed, false);
  t.equal(response.status.code, 503);
  t.match(response.status.message, /not loaded the mail CA yet.*Retry/);
  const other = await postReview(port, admissionReview(civicrmPod({ optIn: false }), { uid: 'no-ca-optout', operation: 'UPDATE' }));
  t.equal((other.json()['response'] as Json)['allowed'], true, 'non-pod-CREATE requests still pass');

  caVolume.update({ 'ca.crt': testPki().mailCa.certPem });
  await waitFor(async () => (await httpsCall(port, { path: '/readyz' })).status === 200, 5_000);
  t.ok(server.state.caLoaded);
  const injected = await postReview(port, admissionReview(civicrmPod(), { uid: 'ca-now' }));
  t.equal((injected.json()['response'] as Json)['patchType'], 'JSONPatch');
});

t.test('serving certificate missing at start: a placeholder answers the probes, not ready until the Secret appears', async (t) => {
  const pki = testPki();
  const { port, tls, server } = await startWebhook(t, { withServing: false });
  const live = await httpsCall(port, { path: '/livez', insecure: true });
  t.equal(live.status, 200, 'alive over the placeholder certificate');
  t.not(live.peerSerial, serialOf(pki.serving.certPem));
  const ready = await httpsCall(port, { path: '/readyz', insecure: true });
  t.equal(ready.status, 503);
  t.match(ready.json()['reasons'], [/serving certificate not loaded: serving certificate .* does not exist/]);
  await t.rejects(httpsCall(port, { path: '/livez' }), 'the placeholder is not trusted by the webhook CA');

  tls.update({ 'tls.crt': pki.serving.certPem, 'tls.key': pki.serving.keyPem, 'ca.crt': pki.webhookCa.certPem });
  await waitFor(async () => server.state.serving !== undefined, 5_000);
  const nowReady = await httpsCall(port, { path: '/readyz' });
  t.equal(nowReady.status, 200, 'ready, verified against the webhook CA');
  t.equal(nowReady.peerSerial, serialOf(pki.serving.certPem));
});

t.test('draining: /readyz 503 at once, requests still answered with Connection: close', async (t) => {
  const { port, server } = await startWebhook(t);
  const closed = server.drainAndClose(400);
  const ready = await httpsCall(port, { path: '/readyz' });
  t.equal(ready.status, 503);
  t.match(ready.json()['reasons'], [/draining/]);
  t.equal(ready.headers['connection'], 'close');
  const res = await postReview(port, admissionReview(civicrmPod(), { uid: 'during-drain' }));
  t.equal(res.status, 200);
  t.equal((res.json()['response'] as Json)['uid'], 'during-drain');
  await closed;
  await t.rejects(httpsCall(port, { path: '/livez' }), 'closed afterwards');
});

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

function metricValue(res: { body: string }, name: string): number {
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(res.body);
  return match ? Number(match[1]) : 0;
}
