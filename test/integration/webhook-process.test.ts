// `demomail webhook` as a real child process: SIGTERM drains an in-flight request and exits 0;
// the logs it writes carry no private key, CA PEM or pod env value.
//
// Runs dist/src/cli.js. `npm test` builds first; when dist is older than src (running this file
// alone with `npx tap`), the test runs `npx tsc -p .` itself.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import t from 'tap';
import { admissionReview, civicrmPod } from '../../bench/fixtures.js';
import { KubeletVolume, httpsCall, tempDir, testPki } from './webhook-helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function ensureBuilt(): void {
  const builtAt = existsSync(join(ROOT, 'dist', 'src', 'webhook', 'server.js')) ? statSync(join(ROOT, 'dist', 'src', 'webhook', 'server.js')).mtimeMs : 0;
  const cliAt = existsSync(CLI) ? statSync(CLI).mtimeMs : 0;
  if (Math.min(builtAt, cliAt) >= newestMtime(join(ROOT, 'src'))) return;
  // tsc emits even when files other people are editing have type errors; what we need is the JS.
  spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore', timeout: 240_000 });
  if (!existsSync(join(ROOT, 'dist', 'src', 'webhook', 'server.js'))) throw new Error('build failed: run npm run build');
}

t.test('SIGTERM: not ready at once, in-flight request answered, exit 0, clean logs', async (t) => {
  ensureBuilt();
  const pki = testPki();
  const root = tempDir(t);
  const tls = new KubeletVolume(join(root, 'tls'));
  tls.update({ 'tls.crt': pki.serving.certPem, 'tls.key': pki.serving.keyPem, 'ca.crt': pki.webhookCa.certPem });
  const caVolume = new KubeletVolume(join(root, 'ca'));
  caVolume.update({ 'ca.crt': pki.mailCa.certPem });

  const child = spawn(
    process.execPath,
    [CLI, 'webhook', '--cert', tls.path('tls.crt'), '--key', tls.path('tls.key'), '--ca-file', caVolume.path('ca.crt'), '--port', '0', '--host', '127.0.0.1'],
    { cwd: root, env: { ...process.env, DEMOMAIL_DRAIN_SECONDS: '1', DEMOMAIL_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webhook did not start within 20 s; stderr: ${stderr}`)), 20_000);
    const check = (): void => {
      const match = /"port":(\d+)[^\n]*"msg":"webhook listening"/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(Number(match[1]));
      }
    };
    child.stdout.on('data', check);
    void exited.then(({ code }) => reject(new Error(`webhook exited with ${code} before listening; stderr: ${stderr}`)));
  });
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
  t.equal(code, 0, `exit code 0 (stderr: ${stderr})`);
  t.equal(signal, null);

  const lines = stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(lines.some((l) => l['msg'] === 'signal received, shutting down'));
  t.ok(lines.some((l) => l['msg'] === 'webhook closed'));
  t.ok(lines.some((l) => l['uid'] === 'in-flight' && l['namespace'] === 'civicrm-demo'), 'per-request line with uid and namespace');
  const all = stdout + stderr;
  t.notOk(all.includes('PRIVATE KEY'), 'no private key in logs');
  t.notOk(all.includes(pki.serving.keyPem.split('\n')[2]!), 'no serving key material');
  t.notOk(all.includes(pki.mailCa.certPem.split('\n')[3]!), 'no CA PEM body');
  t.notOk(all.includes('k8s-demo-site-key'), 'no pod env value');
  t.notOk(all.includes('cron-key-abcdef'), 'no pod env value');
});
