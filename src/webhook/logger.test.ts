import { Writable } from 'node:stream';
import t from 'tap';
import { createLogger } from './logger.js';

t.test('redaction backstop: secrets under known keys never reach the output', async (t) => {
  let out = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString('utf8');
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  logger.info({ keyPem: '-----BEGIN PRIVATE KEY-----x', material: { caPem: 'CA-PEM-BODY' }, object: { spec: { containers: [{ env: [{ value: 'pw' }] }] } } }, 'test');
  logger.info({ req: { headers: { authorization: 'Bearer tok' } } }, 'req');
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(lines[0]!['keyPem'], '[redacted]');
  t.same(lines[0]!['material'], { caPem: '[redacted]' });
  t.equal(lines[0]!['object'], '[redacted]');
  t.equal(lines[0]!['service'], 'demomail-webhook');
  t.notMatch(out, /PRIVATE KEY|CA-PEM-BODY|"pw"|Bearer tok/);
  t.ok(typeof lines[0]!['time'] === 'string', 'ISO timestamps');
});
