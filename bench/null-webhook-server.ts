// An allow-only admission webhook in a process of its own, for `bench:pod-create`: the floor for any
// webhook that, like ours, runs out of the API server's process and sleeps between pod creations (the
// in-process null webhooks of that bench answer from a process that is already awake). Same TLS options
// as ours; echoes the uid. With PATCH_FILE it answers every review with that JSON patch (base64), so the
// bench can tell the API server's cost of applying our patch from our server's cost of computing it.
// GET /handshakes reports TLS connections accepted.
//
//   node dist/bench/null-webhook-server.js CERT KEY PORT [PATCH_FILE]
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { TLS_OPTIONS } from '../src/webhook/tls-material.js';

const [certFile, keyFile, portText, patchFile] = process.argv.slice(2);
if (!certFile || !keyFile || !portText) throw new Error('usage: null-webhook-server CERT KEY PORT [PATCH_FILE]');
const patch = patchFile ? `,"patchType":"JSONPatch","patch":"${readFileSync(patchFile, 'utf8').trim()}"` : '';
const app = Fastify({ https: { cert: readFileSync(certFile), key: readFileSync(keyFile), ...TLS_OPTIONS }, logger: false, forceCloseConnections: true });
let handshakes = 0;
app.post('/mutate', async (request, reply) => {
  const uid = (request.body as { request: { uid: string } }).request.uid;
  return reply.type('application/json').send(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":${JSON.stringify(uid)},"allowed":true${patch}}}`);
});
app.get('/handshakes', async () => String(handshakes));
await app.listen({ port: Number(portText), host: '127.0.0.1' });
app.server.on('secureConnection', () => (handshakes += 1));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
