// The baseline of `bench:admission`, run as its own process: a bare fastify HTTPS server (same TLS
// floor and body limit as the webhook) that answers every POST /mutate with canned bytes, the
// webhook's own answer for the bench pod. Nothing else is loaded: no logger, no metrics.
//
//   node dist/bench/bare-admission-server.js CERT KEY ANSWER PORT
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { TLS_OPTIONS } from '../src/webhook/tls-material.js';

/** The webhook's BODY_LIMIT (src/webhook/server.ts), not imported: that module would load the webhook itself. */
const BODY_LIMIT = 7 * 1024 * 1024;

const [certFile, keyFile, answerFile, portText] = process.argv.slice(2);
if (!certFile || !keyFile || !answerFile || !portText) throw new Error('usage: bare-admission-server CERT KEY ANSWER PORT');
const answer = readFileSync(answerFile, 'utf8');
const app = Fastify({ https: { cert: readFileSync(certFile), key: readFileSync(keyFile), ...TLS_OPTIONS }, bodyLimit: BODY_LIMIT, logger: false });
app.post('/mutate', async (_request, reply) => {
  reply.header('content-type', 'application/json; charset=utf-8');
  return answer;
});
app.get('/readyz', async () => 'ok');
await app.listen({ port: Number(portText), host: '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
