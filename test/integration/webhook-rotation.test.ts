// Certificate and CA hot reload while clients keep calling, the way the kubelet updates a Secret volume.
import t from 'tap';
import { admissionReview, civicrmPod, type Json } from '../../bench/fixtures.js';
import { createCertificateAuthority } from '../../src/pki/certificates.js';
import { httpsCall, postReview, serialOf, servingCert, startWebhook, testPki, type HttpsResult } from './webhook-helpers.js';

const WORKERS = 4;
const MAX_SECONDS = 5;
const MAX_REQUESTS_PER_WORKER = 400;

interface Sample {
  startedAt: number;
  result?: HttpsResult;
  error?: string;
}

function patchText(res: HttpsResult): string {
  const response = res.json()['response'] as Json;
  return Buffer.from(String(response['patch'] ?? ''), 'base64').toString('utf8');
}

t.test('serving certificate swapped like the kubelet does, under load: no failed request, new handshakes see the new serial', async (t) => {
  const pki = testPki();
  const { port, tls, server, logs } = await startWebhook(t);
  const oldSerial = serialOf(pki.serving.certPem);
  const next = servingCert(pki.webhookCa);
  const newSerial = serialOf(next.certPem);
  t.not(oldSerial, newSerial);

  const samples: Sample[] = [];
  const deadline = Date.now() + MAX_SECONDS * 1000;
  let reloadedAt = Number.POSITIVE_INFINITY;
  let stop = false;
  const worker = async (id: number): Promise<void> => {
    for (let i = 0; i < MAX_REQUESTS_PER_WORKER && !stop && Date.now() < deadline; i += 1) {
      const sample: Sample = { startedAt: Date.now() };
      samples.push(sample);
      try {
        sample.result = await postReview(port, admissionReview(civicrmPod(), { uid: `w${id}-${i}` }));
      } catch (err) {
        sample.error = (err as Error).message;
      }
    }
  };
  const workers = Array.from({ length: WORKERS }, (_, id) => worker(id));

  await new Promise((r) => setTimeout(r, 500));
  tls.update({ 'tls.crt': next.certPem, 'tls.key': next.keyPem, 'ca.crt': pki.webhookCa.certPem });
  while (server.state.serving?.serialNumber !== newSerial && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  reloadedAt = Date.now();
  t.equal(server.state.serving?.serialNumber, newSerial, 'reload picked up the swap');
  // Keep the load going a while after the swap, then stop (bounded by the deadline anyway).
  await new Promise((r) => setTimeout(r, 700));
  stop = true;
  await Promise.all(workers);

  const failures = samples.filter((s) => s.error !== undefined || s.result?.status !== 200);
  t.same(failures.map((s) => s.error ?? s.result?.status), [], 'zero failed requests');
  t.ok(samples.length >= 20, `enough requests (${samples.length})`);
  const before = samples.filter((s) => s.result?.peerSerial === oldSerial).length;
  const after = samples.filter((s) => s.result?.peerSerial === newSerial).length;
  t.ok(before > 0 && after > 0, `both serials seen (old ${before}, new ${after})`);
  const lateOld = samples.filter((s) => s.startedAt > reloadedAt + 5 && s.result?.peerSerial === oldSerial);
  t.equal(lateOld.length, 0, 'every handshake started after the reload got the new certificate');
  for (const s of samples) {
    const uid = (s.result?.json()['response'] as Json | undefined)?.['uid'];
    if (typeof uid !== 'string' || !uid.startsWith('w')) t.fail(`uid not echoed: ${String(uid)}`);
  }
  t.match(logs.text, /serving certificate reloaded/);
  t.equal((await httpsCall(port, { path: '/readyz' })).status, 200);
});

t.test('a bad new certificate keeps the old one: error logged, failure counted, still ready', async (t) => {
  const pki = testPki();
  const { port, tls, server, logs } = await startWebhook(t);
  const oldSerial = serialOf(pki.serving.certPem);
  const other = servingCert(pki.webhookCa);
  const another = servingCert(pki.webhookCa);
  // Key of a different certificate: a Secret updated halfway, or a wrong key pasted in.
  tls.update({ 'tls.crt': other.certPem, 'tls.key': another.keyPem, 'ca.crt': pki.webhookCa.certPem });
  await waitForLog(logs, /serving certificate not reloaded/, 5_000);
  const res = await httpsCall(port, { path: '/readyz' });
  t.equal(res.status, 200, 'still ready with the old certificate');
  t.equal(res.peerSerial, oldSerial);
  const metrics = (await httpsCall(port, { path: '/metrics' })).body;
  t.match(metrics, /demomail_webhook_tls_reloads_total\{material="serving",result="failure"\} 1/);
  const errorLine = logs.lines().find((l) => String(l['msg']).includes('not reloaded'));
  t.equal(errorLine?.['level'], 50, 'logged at error level');
  t.match(String(errorLine?.['msg']), /does not belong to certificate/);
  t.match(String(errorLine?.['msg']), new RegExp(`still serving serial ${oldSerial}`));

  // Garbage is refused the same way, and an unchanged bad file is not reported again on every poll.
  tls.update({ 'tls.crt': 'not a certificate', 'tls.key': another.keyPem, 'ca.crt': pki.webhookCa.certPem });
  await waitForLog(logs, /holds no readable PEM certificate/, 5_000);
  await server.reload();
  await server.reload();
  t.equal(logs.text.match(/holds no readable PEM certificate/g)?.length, 1, 'reported once');

  tls.update({ 'tls.crt': other.certPem, 'tls.key': other.keyPem, 'ca.crt': pki.webhookCa.certPem });
  const newSerial = serialOf(other.certPem);
  await waitForLog(logs, /serving certificate reloaded/, 5_000);
  t.equal((await httpsCall(port, { path: '/livez' })).peerSerial, newSerial, 'the good pair is picked up');
  t.equal(server.state.serving?.serialNumber, newSerial);
});

t.test('mail CA rotation: new pods get the new CA; a file with a private key is refused', async (t) => {
  const pki = testPki();
  const { port, caVolume, logs } = await startWebhook(t);
  const bodyLine = (pem: string): string => pem.split('\n')[3]!;
  const first = await postReview(port, admissionReview(civicrmPod(), { uid: 'ca-1' }));
  t.ok(patchText(first).includes(bodyLine(pki.mailCa.certPem)), 'old CA injected');

  const newCa = createCertificateAuthority({ commonName: 'demomail mail CA 2' });
  // During a rollover the file carries old + new.
  caVolume.update({ 'ca.crt': pki.mailCa.certPem + newCa.certPem });
  await waitForLog(logs, /mail CA reloaded/, 5_000);
  const second = await postReview(port, admissionReview(civicrmPod(), { uid: 'ca-2' }));
  t.ok(patchText(second).includes(bodyLine(newCa.certPem)), 'new CA injected');
  t.ok(patchText(second).includes(bodyLine(pki.mailCa.certPem)), 'old CA still there during the rollover');

  caVolume.update({ 'ca.crt': newCa.certPem + newCa.keyPem });
  await waitForLog(logs, /mail CA not reloaded: .*PRIVATE KEY/, 5_000);
  const third = await postReview(port, admissionReview(civicrmPod(), { uid: 'ca-3' }));
  const patch = patchText(third);
  t.notOk(patch.includes('PRIVATE KEY'), 'a key is never injected');
  t.ok(patch.includes(bodyLine(newCa.certPem)), 'previous CA kept');
  t.notOk(logs.text.includes(bodyLine(newCa.keyPem)), 'key content not logged');
  t.equal((await httpsCall(port, { path: '/readyz' })).status, 200);
});

async function waitForLog(logs: { text: string }, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(logs.text)) {
    if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
