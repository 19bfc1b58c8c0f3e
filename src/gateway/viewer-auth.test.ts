// The viewer's basic auth from the mounted optional Secret demomail-ui-auth: read rules, and the
// running gateway picking up a created, rotated, broken and deleted Secret without a restart.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { settingsFrom } from '../config.js';
import { readViewerAuth, startGateway } from './main.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'demomail-ui-auth-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('readViewerAuth', async (t) => {
  const dir = tempDir(t);
  t.same(await readViewerAuth(dir), { kind: 'off' }, 'no Secret (an empty mount): off');
  t.same(await readViewerAuth(join(dir, 'missing')), { kind: 'off' }, 'no directory at all: off');
  writeFileSync(join(dir, 'username'), ' viewer \n');
  const noPassword = await readViewerAuth(dir);
  t.equal(noPassword.kind, 'broken', 'a username without a password fails closed');
  t.match(noPassword.kind === 'broken' ? noPassword.reason : '', /no password; give Secret demomail-ui-auth a non-empty `username` and `password`/);
  writeFileSync(join(dir, 'password'), '');
  t.equal((await readViewerAuth(dir)).kind, 'broken', 'an empty password fails closed');
  writeFileSync(join(dir, 'password'), 'pa:ss wörd\n');
  t.same(await readViewerAuth(dir), { kind: 'on', credentials: { username: 'viewer', password: 'pa:ss wörd' } }, 'username trimmed, one trailing newline off the password');
  rmSync(join(dir, 'username'));
  t.match(await readViewerAuth(dir), { kind: 'broken', reason: /no username/ });
  mkdirSync(join(dir, 'username'));
  t.match(await readViewerAuth(dir), { kind: 'broken', reason: /username cannot be read/ }, 'an unreadable file says which');
});

t.test('the running gateway follows the Secret without a restart', async (t) => {
  const mount = tempDir(t);
  const gateway = await startGateway({
    settings: settingsFrom({}),
    host: '127.0.0.1',
    ports: { smtp: 0, submission: 0, smtps: 0, http: 0 },
    greenmail: { host: '127.0.0.1', smtpPort: 1, apiPort: 1 },
    accounts: [],
    tls: { certFile: join(mount, 'no-tls', 'tls.crt'), keyFile: join(mount, 'no-tls', 'tls.key') },
    uiAuthDir: mount,
    reloadDebounceMs: 20,
    reloadPollMs: 200,
    defaultMetrics: false,
  });
  t.teardown(() => gateway.close());
  const url = `http://127.0.0.1:${gateway.ports.http}/api/v1/messages`;
  const status = async (user?: string, pass?: string): Promise<number> =>
    (await fetch(url, user === undefined ? {} : { headers: { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` } })).status;
  const eventually = async (want: () => Promise<boolean>, what: string): Promise<void> => {
    for (const started = Date.now(); Date.now() - started < 15_000; ) {
      if (await want()) return void t.pass(what);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    t.fail(`${what}: not within 15 s`);
  };

  t.equal(await status(), 200, 'no Secret: the viewer is open');
  // The kubelet's layout: files are links into ..data, which is swapped atomically.
  const version = (name: string, files: Record<string, string>): void => {
    mkdirSync(join(mount, name));
    for (const [key, value] of Object.entries(files)) writeFileSync(join(mount, name, key), value);
    symlinkSync(name, join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
  };
  version('..v1', { username: 'viewer', password: 'first' });
  for (const key of ['username', 'password']) symlinkSync(join('..data', key), join(mount, key));
  await eventually(async () => (await status()) === 401, 'Secret created: 401 without credentials');
  t.equal(await status('viewer', 'first'), 200, 'the Secret’s credentials pass');
  version('..v2', { username: 'viewer', password: 'second' });
  await eventually(async () => (await status('viewer', 'first')) === 401, 'password rotated: the old one is refused');
  t.equal(await status('viewer', 'second'), 200, 'the new one passes');
  version('..v3', { username: 'viewer', password: '' });
  await eventually(async () => (await status('viewer', 'second')) === 503, 'Secret broken (empty password): fail closed with 503');
  const body = (await (await fetch(url)).json()) as { message: string };
  t.match(body.message, /viewer basic auth is misconfigured: the Secret has no password/);
  t.notMatch(JSON.stringify(body), /second/, 'no credential in the answer');
  for (const key of ['username', 'password', '..data']) rmSync(join(mount, key));
  await eventually(async () => (await status()) === 200, 'Secret deleted: open again');
  t.equal((await fetch(`http://127.0.0.1:${gateway.ports.http}/livez`)).status, 200, 'health stays open throughout');
});
