import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createCertificateAuthority, createServerCertificate } from '../pki/certificates.js';
import { MaterialLoader, directoriesToWatch, watchDirectories } from './reloader.js';

const ca = createCertificateAuthority({ commonName: 'reloader test CA' });
const leafA = createServerCertificate({ ca, commonName: 'a', sans: ['localhost'] });
const leafB = createServerCertificate({ ca, commonName: 'b', sans: ['localhost'] });

function temp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-reloader-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** kubelet AtomicWriter in miniature: new ..TS dir, ..data_tmp symlink, rename over ..data. */
function kubeletWrite(dir: string, generation: number, files: Record<string, string>): void {
  const stamp = `..ts_${generation}`;
  mkdirSync(join(dir, stamp));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, stamp, name), content);
  symlinkSync(stamp, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) {
    try {
      symlinkSync(join('..data', name), join(dir, name));
    } catch {
      // already linked through ..data
    }
  }
}

t.test('directoriesToWatch', async (t) => {
  t.same(directoriesToWatch({ certFile: '/tls/tls.crt', keyFile: '/tls/tls.key', caFile: '/ca/ca.crt' }), ['/ca', '/tls']);
  t.same(directoriesToWatch({ certFile: 'tls.crt', keyFile: 'tls.key', caFile: 'ca.crt' }), ['.']);
});

t.test('MaterialLoader reports loaded / unchanged / failed (once)', async (t) => {
  const dir = temp(t);
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') };
  const loader = new MaterialLoader(files);

  const missing = await loader.load();
  t.match(missing, { serving: { status: 'failed', missing: true, repeated: false }, ca: { status: 'failed', missing: true, repeated: false } });
  t.match(await loader.load(), { serving: { status: 'failed', repeated: true }, ca: { status: 'failed', repeated: true } }, 'still missing: repeated');

  kubeletWrite(dir, 1, { 'tls.crt': leafA.certPem, 'tls.key': leafA.keyPem, 'ca.crt': ca.certPem });
  const loaded = await loader.load();
  t.equal(loaded.serving.status, 'loaded');
  t.equal(loaded.ca.status, 'loaded');
  t.same(await loader.load(), { serving: { status: 'unchanged' }, ca: { status: 'unchanged' } });

  kubeletWrite(dir, 2, { 'tls.crt': leafB.certPem, 'tls.key': leafA.keyPem, 'ca.crt': ca.certPem });
  const mismatch = await loader.load();
  t.match(mismatch.serving, { status: 'failed', missing: false, repeated: false, error: { message: /does not belong/ } });
  t.same(mismatch.ca, { status: 'unchanged' });
  t.match((await loader.load()).serving, { status: 'failed', repeated: true });

  kubeletWrite(dir, 3, { 'tls.crt': leafB.certPem, 'tls.key': leafB.keyPem, 'ca.crt': ca.certPem });
  const fixed = await loader.load();
  t.equal(fixed.serving.status, 'loaded');
  if (fixed.serving.status === 'loaded') t.equal(fixed.serving.material.certPem, leafB.certPem);
});

t.test('watchDirectories fires once per kubelet ..data swap, and picks up a directory created later', async (t) => {
  const root = temp(t);
  const mounted = join(root, 'tls');
  const later = join(root, 'later');
  mkdirSync(mounted);
  let calls = 0;
  const watch = watchDirectories([mounted, later], () => (calls += 1), { debounceMs: 50, pollMs: 300 });
  t.teardown(() => watch.close());

  kubeletWrite(mounted, 1, { 'tls.crt': 'a', 'tls.key': 'b' });
  await new Promise((r) => setTimeout(r, 200));
  t.equal(calls, 1, 'a burst of events gives one call');

  mkdirSync(later);
  await new Promise((r) => setTimeout(r, 450)); // one poll: `later` gets watched (and the poll itself calls once)
  const afterPoll = calls;
  t.ok(afterPoll >= 2, 'the poll calls too');
  kubeletWrite(later, 1, { 'ca.crt': 'c' });
  await new Promise((r) => setTimeout(r, 150));
  t.ok(calls > afterPoll, 'events in the late directory are seen');

  watch.close();
  const closedAt = calls;
  kubeletWrite(mounted, 2, { 'tls.crt': 'x', 'tls.key': 'y' });
  await new Promise((r) => setTimeout(r, 400));
  t.equal(calls, closedAt, 'nothing after close');
});
