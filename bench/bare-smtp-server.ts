// A floor for `bench:gateway`, run as its own process: npm smtp-server alone with the gateway's TLS
// and AUTH settings on implicit TLS (as the gateway's 2465), which buffers each message and answers
// 250. No routing, no delivery into GreenMail, no capture, no logging: the least any gateway built on
// smtp-server (which issue 8 asks us to prefer to hand-written protocol code) spends per message.
//
//   node dist/bench/bare-smtp-server.js CERT KEY USER PASSWORD PORT
import { readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';
import { TLS_MIN_VERSION } from '../src/webhook/tls-material.js';

const [certFile, keyFile, user, password, portText] = process.argv.slice(2);
if (!certFile || !keyFile || !user || !password || !portText) throw new Error('usage: bare-smtp-server CERT KEY USER PASSWORD PORT');
const server = new SMTPServer({
  secure: true,
  key: readFileSync(keyFile),
  cert: readFileSync(certFile),
  minVersion: TLS_MIN_VERSION,
  authMethods: ['PLAIN', 'LOGIN'],
  hideENHANCEDSTATUSCODES: false,
  size: 25 * 1024 * 1024,
  disableReverseLookup: true,
  logger: false,
  onAuth(auth, _session, callback) {
    if (auth.username === user && auth.password === password) return callback(null, { user });
    callback(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
  },
  onData(stream, _session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => {
      Buffer.concat(chunks);
      callback(null, 'OK');
    });
  },
});
server.on('error', () => {});
server.listen(Number(portText), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
