// The HTTP edge against a real local HTTP server that answers like an API server in trouble.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { backoffDelay, httpTransport, isRetryable, isStaleRead, KubeApiError, kubeClient, DEFAULT_RETRY } from './kube.js';
import type { KubeObject } from './objects.js';

type Handler = (req: IncomingMessage, body: string) => { status: number; body?: unknown };

async function fakeApiServer(t: Test, handler: Handler) {
  const seen: { method: string; url: string; contentType?: string; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body });
      const answer = handler(req, body);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const kc = new KubeConfig();
  const port = (server.address() as AddressInfo).port;
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'test-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { seen, transport: httpTransport(kc), port };
}

const FAST = { attempts: 4, baseDelayMs: 1, maxDelayMs: 2 };
const secret: KubeObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'demomail-smtp', namespace: 'demomail' }, type: 'Opaque', data: { password: 'c2VjcmV0' } };

t.test('apply: server-side apply PATCH with field manager, force, token', async (t) => {
  const api = await fakeApiServer(t, (_req, body) => ({ status: 201, body: { ...JSON.parse(body), metadata: { ...JSON.parse(body).metadata, resourceVersion: '1' } } }));
  const client = kubeClient(api.transport, FAST);
  const live = await client.apply(secret);
  t.equal(live.metadata.resourceVersion, '1');
  t.equal(client.writes, 1);
  t.equal(api.seen[0]?.method, 'PATCH');
  t.equal(api.seen[0]?.url, '/api/v1/namespaces/demomail/secrets/demomail-smtp?fieldManager=demomail&force=true');
  t.equal(api.seen[0]?.contentType, 'application/apply-patch+yaml');
  t.same(JSON.parse(api.seen[0]?.body ?? '{}'), secret, 'the raw object, unchanged');
});

t.test('get: 404 is "absent", other paths per kind', async (t) => {
  const api = await fakeApiServer(t, (req) => (req.url?.includes('missing') ? { status: 404, body: { kind: 'Status', reason: 'NotFound' } } : { status: 200, body: { kind: 'Deployment', metadata: { name: 'd' } } }));
  const client = kubeClient(api.transport, FAST);
  t.equal(await client.get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'missing', namespace: 'demomail' } }), undefined);
  t.ok(await client.get({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'demomail' } }));
  await client.get({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'demomail' } });
  t.same(api.seen.map((s) => s.url), [
    '/api/v1/namespaces/demomail/configmaps/missing',
    '/apis/apps/v1/namespaces/demomail/deployments/d',
    '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/demomail',
  ]);
  t.equal(client.writes, 0, 'reads are not writes');
});

t.test('5xx and 429 are retried with backoff, then succeed', async (t) => {
  let calls = 0;
  const api = await fakeApiServer(t, () => (++calls <= 2 ? { status: calls === 1 ? 503 : 429, body: { reason: calls === 1 ? 'ServiceUnavailable' : 'TooManyRequests' } } : { status: 200, body: secret }));
  const retries: string[] = [];
  const client = kubeClient(api.transport, FAST, undefined, (err, attempt, delayMs) => retries.push(`${attempt}/${delayMs}: ${err.message}`));
  await client.apply(secret);
  t.equal(calls, 3);
  t.same(retries, [
    '1/1: Secret demomail/demomail-smtp: patch failed with HTTP 503 ServiceUnavailable',
    '2/2: Secret demomail/demomail-smtp: patch failed with HTTP 429 TooManyRequests',
  ], 'each retry is reported with the object and the cause');
});

t.test('retries are bounded; the error names the object and what failed, not the secret', async (t) => {
  const api = await fakeApiServer(t, () => ({ status: 500, body: { reason: 'InternalError', message: 'etcd timeout', details: { causes: [{ field: 'data[password]', reason: 'FieldValueInvalid' }] } } }));
  const client = kubeClient(api.transport, FAST);
  const err = (await client.apply(secret).then(() => undefined, (e: unknown) => e)) as Error;
  t.match(err?.message, /^Secret demomail\/demomail-smtp: patch failed with HTTP 500 InternalError: data\[password\]: FieldValueInvalid \(gave up after 4 attempts\)$/);
  t.notOk(err?.message.includes('c2VjcmV0'));
  t.equal(api.seen.length, 4);
});

t.test('403 names the missing RBAC permission and is not retried', async (t) => {
  const api = await fakeApiServer(t, () => ({
    status: 403,
    body: { reason: 'Forbidden', message: 'secrets "demomail-smtp" is forbidden: User "system:serviceaccount:demomail:demomail-bootstrap" cannot patch resource "secrets"' },
  }));
  const client = kubeClient(api.transport, FAST);
  await t.rejects(client.apply(secret), /Secret demomail\/demomail-smtp: patch forbidden — the bootstrap's ServiceAccount needs RBAC verb "patch" \(and "create" when the object does not exist yet.*\) on secrets "demomail-smtp" in namespace demomail/);
  t.equal(api.seen.length, 1);
  await t.rejects(client.namespacesWithLabel('demomail/injection=enabled'), /namespaces: list forbidden — .*verb "list" on namespaces/);
});

t.test('AlreadyExists and Conflict are handed back (re-plan), not retried; create is a POST to the collection', async (t) => {
  for (const reason of ['AlreadyExists', 'Conflict']) {
    const api = await fakeApiServer(t, () => ({ status: 409, body: { reason, message: 'secrets "demomail-smtp" already exists' } }));
    const client = kubeClient(api.transport, FAST);
    const err = await client.create(secret).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof KubeApiError && err.reason === reason, reason);
    t.ok(isStaleRead(err));
    t.equal(api.seen.length, 1);
    t.equal(`${api.seen[0]?.method} ${api.seen[0]?.url}`, 'POST /api/v1/namespaces/demomail/secrets?fieldManager=demomail');
  }
});

t.test('403 from a quota or a terminating namespace does not blame RBAC', async (t) => {
  const api = await fakeApiServer(t, () => ({ status: 403, body: { reason: 'Forbidden', message: 'secrets "demomail-smtp" is forbidden: exceeded quota: no-secrets, requested: secrets=1, used: secrets=0, limited: secrets=0' } }));
  const client = kubeClient(api.transport, FAST);
  const err = (await client.apply(secret).then(() => undefined, (e: unknown) => e)) as Error;
  t.match(err.message, /^Secret demomail\/demomail-smtp: patch refused by the namespace \(HTTP 403\): .*exceeded quota/);
  t.notMatch(err.message, /RBAC/);
});

t.test('connection refused is retried, then reported with the object', async (t) => {
  const api = await fakeApiServer(t, () => ({ status: 200 }));
  const closed = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${closed}`, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  let sleeps = 0;
  const client = kubeClient(httpTransport(kc), FAST, async () => {
    sleeps++;
  });
  await t.rejects(client.get(secret), /Secret demomail\/demomail-smtp: get could not reach the API server: ECONNREFUSED.*gave up after 4 attempts/);
  t.equal(sleeps, 3, 'three waits between four attempts');
  t.equal(api.seen.length, 0);
});

t.test('namespacesWithLabel: label selector in the query, names sorted', async (t) => {
  const api = await fakeApiServer(t, () => ({ status: 200, body: { items: [{ metadata: { name: 'shop' } }, { metadata: { name: 'blog' } }] } }));
  t.same(await kubeClient(api.transport, FAST).namespacesWithLabel('demomail/injection=enabled'), ['blog', 'shop']);
  t.equal(api.seen[0]?.url, '/api/v1/namespaces?labelSelector=demomail%2Finjection%3Denabled');
});

t.test('namespacesWithLabel: Terminating namespaces are left out (they refuse new objects)', async (t) => {
  const api = await fakeApiServer(t, () => ({
    status: 200,
    body: {
      items: [
        { metadata: { name: 'shop' }, status: { phase: 'Active' } },
        { metadata: { name: 'gone', deletionTimestamp: '2026-11-25T09:00:00Z' }, status: { phase: 'Terminating' } },
        { metadata: { name: 'going', deletionTimestamp: '2026-11-25T09:00:00Z' } },
      ],
    },
  }));
  t.same(await kubeClient(api.transport, FAST).namespacesWithLabel('demomail/injection=enabled'), ['shop']);
});

t.test('retry policy', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, DEFAULT_RETRY)), [250, 500, 1000, 2000, 4000, 8000, 8000]);
  t.ok(isRetryable(new KubeApiError('x', 503, 'ServiceUnavailable')));
  t.ok(isRetryable(new KubeApiError('x', 429, 'TooManyRequests')));
  t.ok(isRetryable(Object.assign(new Error('x'), { code: 'ECONNRESET' })));
  t.notOk(isRetryable(new KubeApiError('x', 422, 'Invalid')));
  t.notOk(isRetryable(new KubeApiError('x', 403, 'Forbidden')));
  t.notOk(isRetryable(new Error('plain')));
});
