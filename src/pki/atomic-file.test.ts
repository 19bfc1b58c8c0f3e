import t from 'tap';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitFiles, discardFiles, removeStaleTempFiles, stageFile } from './atomic-file.js';

const dir = mkdtempSync(join(tmpdir(), 'demomail-atomic-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('staged files are invisible until committed, then replace the target', async (t) => {
  const target = join(dir, 'tls.crt');
  writeFileSync(target, 'old');
  const staged = await stageFile(target, 'new', 0o640);
  t.equal(readFileSync(target, 'utf8'), 'old', 'target unchanged while staged');
  t.match(staged.temp, /\/\.tls\.crt\.demomail-tmp-\d+-[0-9a-f]{8}$/);
  t.equal(statSync(staged.temp).mode & 0o777, 0o640);
  await commitFiles([staged]);
  t.equal(readFileSync(target, 'utf8'), 'new');
  t.same(readdirSync(dir), ['tls.crt']);
});

t.test('discarded files leave nothing behind', async (t) => {
  const staged = await stageFile(join(dir, 'a'), Buffer.from('x'), 0o644);
  await discardFiles([staged, { target: join(dir, 'b'), temp: join(dir, 'never-created') }]);
  t.same(readdirSync(dir), ['tls.crt']);
});

t.test('staging into a missing directory fails with the path', async (t) => {
  await t.rejects(stageFile(join(dir, 'missing', 'x'), 'x', 0o644), { code: 'ENOENT' });
});

t.test('removeStaleTempFiles removes only our temporary files', async (t) => {
  writeFileSync(join(dir, '.ca.crt.demomail-tmp-1-deadbeef'), 'stale');
  writeFileSync(join(dir, '.hidden-user-file'), 'keep');
  await removeStaleTempFiles(dir);
  t.same(readdirSync(dir).sort(), ['.hidden-user-file', 'tls.crt']);
  await removeStaleTempFiles(join(dir, 'does-not-exist'));
  t.pass('a missing directory is not an error');
});
