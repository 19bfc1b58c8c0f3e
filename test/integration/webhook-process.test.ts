// `demomail webhook` as a real child process: SIGTERM drains an in-flight request and exits 0;
// the logs it writes carry no private key, CA PEM or pod env value.
//
// Runs dist/src/cli.js. `npm test` builds first; when dist is older than src (running this file
// alone with `npx tap`), the test runs `npx tsc -p .` itself.
import { connect } from 'node:tls';
import t from 'tap';
import { admissionReview, civicrmPod } from '../../bench/fixtures.js';
import { httpsCall, startWebhookProcess, testPki } from './webhook-helpers.js';

t.test('SIGTERM: not ready at once, in-flight request answered, exit 0, clean logs', async (t) => {
  const pki = testPki();
  const proc = await startWebhookProcess(t, { DEMOMAIL_DRAIN_SECONDS: '1', DEMOMAIL_LOG_LEVEL: 'debug' });
  const { child, port, exited } = proc;
  t.equal((await httpsCall(port, { path: '/readyz' })).status, 200, 'ready');
  const injected = await httpsCall(port, { body: JSON.stringify(admissionReview(civicrmPod(), { uid: 'proc-1' })) });
  t.equal(injected.status, 200);

  // An in-flight request: headers and half the body sent before SIGTERM, the rest after.
  const body = Buffer.from(JSON.stringify(admissionReview(civicrmPod(), { uid: 'in-flight' })));
  const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.webhookCa.certPem });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  let raw = '';
  socket.on('data', (c: Buffer) => (raw += c.toString('utf8')));
  const socketClosed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n`);
  socket.write(body.subarray(0, 1000));

  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  const draining = await httpsCall(port, { path: '/readyz' });
  t.equal(draining.status, 503, '/readyz 503 while draining');
  t.match(draining.body, /draining/);
  socket.write(body.subarray(1000));
  await socketClosed;
  t.match(raw, /^HTTP\/1\.1 200/, 'in-flight request answered');
  t.match(raw, /connection: close/i, 'with Connection: close');
  t.match(raw, /"uid":"in-flight"/);

  const { code, signal } = await exited;
  t.equal(code, 0, `exit code 0 (stderr: ${proc.stderr()})`);
  t.equal(signal, null);

  const stdout = proc.stdout();
  const lines = stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(lines.some((l) => l['msg'] === 'signal received, shutting down'));
  t.ok(lines.some((l) => l['msg'] === 'webhook closed'));
  t.ok(lines.some((l) => l['uid'] === 'in-flight' && l['namespace'] === 'civicrm-demo'), 'per-request line with uid and namespace');
  const all = stdout + proc.stderr();
  t.notOk(all.includes('PRIVATE KEY'), 'no private key in logs');
  t.notOk(all.includes(pki.serving.keyPem.split('\n')[2]!), 'no serving key material');
  t.notOk(all.includes(pki.mailCa.certPem.split('\n')[3]!), 'no CA PEM body');
  t.notOk(all.includes('k8s-demo-site-key'), 'no pod env value');
  t.notOk(all.includes('cron-key-abcdef'), 'no pod env value');
});
