// `demomail install-ca` end to end: the built CLI writes the files, then real clients (openssl, curl, a
// Node child process) trust a local TLS server signed by the mail CA through exactly those files.
// Needs the compiled CLI: `npm test` builds first; run alone, this file builds dist/ once if it is stale.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';
import { certificatesInBundle, createCertificateAuthority, createServerCertificate } from '../../src/pki/certificates.js';

const CI = process.env['CI'] === 'true';
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(REPO, 'dist', 'src', 'cli.js');
const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const PATH = process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin';

/** false when present; a skip reason otherwise (never under CI, where a missing tool must fail). */
function missing(what: string, present: boolean): string | false {
  if (present) return false;
  if (CI) return false;
  const reason = `${what} not available: SKIPPED (install it; under CI=true this fails)`;
  t.comment(`install-ca integration: ${reason}`);
  return reason;
}
const has = (tool: string, args: string[]) => spawnSync(tool, args, { stdio: 'ignore' }).status === 0;
const noOpenssl = missing('openssl', has('openssl', ['version']));
const noCurl = missing('curl', has('curl', ['--version']));
const noSystemBundle = missing(SYSTEM_BUNDLE, existsSync(SYSTEM_BUNDLE));

/** Builds dist/ when a file this test depends on is newer than its compiled output. */
function ensureBuiltCli(): void {
  const sources = ['src/cli.ts', 'src/trust/install-ca.ts', 'src/pki/certificates.ts', 'src/pki/atomic-file.ts', 'src/config.ts'];
  const stale = () =>
    sources.some((src) => {
      const out = join(REPO, 'dist', src.replace(/\.ts$/, '.js'));
      return !existsSync(out) || statSync(out).mtimeMs < statSync(join(REPO, src)).mtimeMs;
    });
  if (!stale()) return;
  t.comment('dist/ is missing or older than the sources: running tsc -p tsconfig.json once');
  // Errors elsewhere in the project do not stop tsc from emitting; staleness is re-checked below.
  spawnSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO, 'tsconfig.json')], { stdio: 'ignore', timeout: 300_000 });
  if (stale()) throw new Error(`${CLI} is still missing or stale after tsc; run "npm run build" and look at its errors`);
}
ensureBuiltCli();

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous on purpose: the TLS server under test lives in this process's event loop. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

function installCa(dir: string, caPem: string | undefined, extraArgs: string[] = []): Promise<Result> {
  const env: NodeJS.ProcessEnv = { PATH };
  if (caPem !== undefined) env['DEMOMAIL_CA_PEM'] = caPem;
  return run(process.execPath, [CLI, 'install-ca', '--dir', dir, ...extraArgs], env);
}

const root = mkdtempSync(join(tmpdir(), 'demomail-install-ca-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

const mailCa = createCertificateAuthority({ commonName: 'demomail mail CA' });
const leaf = createServerCertificate({ ca: mailCa, commonName: 'localhost', sans: ['localhost', '127.0.0.1', '::1'] });
const leafFile = join(root, 'leaf.crt');
writeFileSync(leafFile, leaf.certPem);
const expectedFiles = ['ca-bundle.crt', 'ca.crt', 'php', join('php', 'zz-demomail.ini')];
const listTree = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();

const dir = join(root, 'etc-demomail');

t.test('writes ca.crt, ca-bundle.crt and php/zz-demomail.ini', async (t) => {
  const result = await installCa(dir, mailCa.certPem, ['--system-bundle', SYSTEM_BUNDLE]);
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stdout, ['ca.crt', 'ca-bundle.crt', join('php', 'zz-demomail.ini')].map((f) => `wrote ${join(dir, f)}\n`).join(''));
  t.equal(result.stderr, '', 'no warnings with a good system bundle');
  t.same(listTree(dir), expectedFiles, 'exactly these files, no temporaries');
  t.equal(readFileSync(join(dir, 'ca.crt'), 'utf8'), mailCa.certPem, 'ca.crt holds only the mail CA');
  t.equal(readFileSync(join(dir, 'php', 'zz-demomail.ini'), 'utf8').split('\n').filter((l) => !l.startsWith(';')).join('\n'),
    `openssl.cafile=${dir}/ca-bundle.crt\ncurl.cainfo=${dir}/ca-bundle.crt\n`);
  for (const f of ['ca.crt', 'ca-bundle.crt', join('php', 'zz-demomail.ini')]) {
    t.equal(statSync(join(dir, f)).mode & 0o777, 0o644, `${f} is world-readable`);
  }
});

t.test('the system roots survive, each once, in their order, followed by the mail CA', { skip: noSystemBundle }, async (t) => {
  const system = certificatesInBundle(readFileSync(SYSTEM_BUNDLE, 'utf8'), SYSTEM_BUNDLE).certificates;
  const bundle = certificatesInBundle(readFileSync(join(dir, 'ca-bundle.crt'), 'utf8'), 'ca-bundle.crt').certificates;
  const uniqueSystem = system.filter((pem, i) => system.indexOf(pem) === i);
  t.ok(uniqueSystem.length > 50, `system bundle has ${uniqueSystem.length} roots`);
  t.same(bundle, [...uniqueSystem, mailCa.certPem]);
  const publicRoot = uniqueSystem.find((pem) => new X509Certificate(pem).subject.includes('CN=ISRG Root X1')) ?? (uniqueSystem[0] as string);
  t.ok(readFileSync(join(dir, 'ca-bundle.crt'), 'utf8').includes(publicRoot), `public root ${new X509Certificate(publicRoot).subject.replace(/\n/g, ', ')} is still in ca-bundle.crt`);
});

t.test('openssl verifies a leaf signed by the mail CA against ca-bundle.crt', { skip: noOpenssl }, async (t) => {
  const ok = await run('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca-bundle.crt'), leafFile], { PATH });
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, /leaf\.crt: OK/);
  const viaCa = await run('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), leafFile], { PATH });
  t.equal(viaCa.code, 0, viaCa.stdout + viaCa.stderr);
  if (!noSystemBundle) {
    const without = await run('openssl', ['verify', '-CAfile', SYSTEM_BUNDLE, leafFile], { PATH });
    t.not(without.code, 0, 'control: the system bundle alone does not trust it');
  }
});

t.test('real clients reach a local TLS server through the written files', async (t) => {
  const server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem }, (_req, res) => {
    res.setHeader('Connection', 'close');
    res.end('hello from the mail CA\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;

  t.test('curl --cacert ca-bundle.crt', { skip: noCurl }, async (t) => {
    const args = ['-sS', '--fail', '--max-time', '10', '--resolve', `localhost:${port}:127.0.0.1`];
    const byName = await run('curl', [...args, '--cacert', join(dir, 'ca-bundle.crt'), `https://localhost:${port}/`], { PATH });
    t.equal(byName.code, 0, byName.stderr);
    t.equal(byName.stdout, 'hello from the mail CA\n');
    const byIp = await run('curl', [...args, '--cacert', join(dir, 'ca-bundle.crt'), `https://127.0.0.1:${port}/`], { PATH });
    t.equal(byIp.code, 0, byIp.stderr);
    if (!noSystemBundle) {
      const control = await run('curl', [...args, '--cacert', SYSTEM_BUNDLE, `https://localhost:${port}/`], { PATH });
      t.equal(control.code, 60, `control: without the mail CA curl refuses the certificate (${control.stderr.trim()})`);
    }
  });

  t.test('node child process with NODE_EXTRA_CA_CERTS=ca.crt', async (t) => {
    const script = `
      const https = require('node:https');
      https.get({ hostname: process.argv[1], family: 4, port: ${port}, path: '/' }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => process.stdout.write(res.statusCode + ' ' + body));
      }).on('error', (err) => { process.stderr.write(String(err.code || err.message)); process.exit(3); });`;
    for (const host of ['localhost', '127.0.0.1']) {
      const trusted = await run(process.execPath, ['-e', script, host], { PATH, NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') });
      t.equal(trusted.code, 0, trusted.stderr);
      t.equal(trusted.stdout, '200 hello from the mail CA\n', `https://${host}:${port}/`);
    }
    const control = await run(process.execPath, ['-e', script, 'localhost'], { PATH });
    t.equal(control.code, 3, 'control: without NODE_EXTRA_CA_CERTS the request fails');
    t.match(control.stderr, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
  });
});

t.test('re-run is idempotent', async (t) => {
  const files = ['ca.crt', 'ca-bundle.crt', join('php', 'zz-demomail.ini')].map((f) => join(dir, f));
  const before = files.map((f) => readFileSync(f));
  const again = await installCa(dir, mailCa.certPem, ['--system-bundle', SYSTEM_BUNDLE]);
  t.equal(again.code, 0, again.stderr);
  t.same(files.map((f) => readFileSync(f)), before, 'same bytes');
  t.same(listTree(dir), expectedFiles);
});

t.test('bad DEMOMAIL_CA_PEM: clear message, non-zero exit, no files', async (t) => {
  const keyBody = mailCa.keyPem.split('\n')[1] as string;
  const cases: Array<{ name: string; pem: string | undefined; code: number; message: RegExp }> = [
    { name: 'a private key', pem: mailCa.keyPem, code: 1, message: /DEMOMAIL_CA_PEM: PEM block 1 is a "PRIVATE KEY": only CERTIFICATE blocks are accepted/ },
    { name: 'certificate plus key', pem: mailCa.certPem + mailCa.keyPem, code: 1, message: /PEM block 2 is a "PRIVATE KEY": only CERTIFICATE blocks are accepted/ },
    { name: 'garbage', pem: 'this is not PEM', code: 1, message: /DEMOMAIL_CA_PEM: no PEM certificate found/ },
    { name: 'a damaged certificate', pem: mailCa.certPem.replace(/\n[A-Za-z0-9+/]{64}\n/, '\nAAAA\n'), code: 1, message: /DEMOMAIL_CA_PEM: CERTIFICATE block 1 (does not decode as X\.509|is not valid base64)/ },
    { name: 'truncated', pem: mailCa.certPem.slice(0, 200), code: 1, message: /no matching "-----END" line/ },
    { name: 'empty', pem: '', code: 2, message: /DEMOMAIL_CA_PEM is empty/ },
    { name: 'blank', pem: ' \n\t', code: 2, message: /DEMOMAIL_CA_PEM is empty/ },
    { name: 'unset', pem: undefined, code: 2, message: /DEMOMAIL_CA_PEM is empty/ },
  ];
  const existing = ['ca.crt', 'ca-bundle.crt', join('php', 'zz-demomail.ini')].map((f) => readFileSync(join(dir, f)));
  for (const c of cases) {
    const fresh = join(root, `bad-${c.name.replace(/\W+/g, '-')}`);
    const result = await installCa(fresh, c.pem, ['--system-bundle', SYSTEM_BUNDLE]);
    t.equal(result.code, c.code, `${c.name}: exit ${c.code}`);
    t.match(result.stderr, /^demomail install-ca: /, `${c.name}: message names the command`);
    t.match(result.stderr, c.message, `${c.name}: ${result.stderr.trim()}`);
    t.notMatch(result.stderr, keyBody, `${c.name}: the private key is not echoed`);
    t.equal(result.stdout, '', `${c.name}: nothing reported as written`);
    t.notOk(existsSync(fresh), `${c.name}: no directory or partial file created`);
    const over = await installCa(dir, c.pem, ['--system-bundle', SYSTEM_BUNDLE]);
    t.equal(over.code, c.code);
  }
  t.same(['ca.crt', 'ca-bundle.crt', join('php', 'zz-demomail.ini')].map((f) => readFileSync(join(dir, f))), existing, 'existing files untouched by bad runs');
  t.same(listTree(dir), expectedFiles);
});

t.test('system bundle: missing is a warning, unreadable is an error', async (t) => {
  const target = join(root, 'no-system');
  const result = await installCa(target, mailCa.certPem, ['--system-bundle', join(root, 'does-not-exist.crt')]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stderr, /^demomail install-ca: warning: system CA bundle .*does-not-exist\.crt does not exist; ca-bundle\.crt holds only the mail CA/);
  t.equal(readFileSync(join(target, 'ca-bundle.crt'), 'utf8'), mailCa.certPem);

  const bundleDir = join(root, 'bundle-is-a-dir');
  mkdirSync(bundleDir);
  const bad = await installCa(join(root, 'unreadable'), mailCa.certPem, ['--system-bundle', bundleDir]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /cannot read system CA bundle .*bundle-is-a-dir: EISDIR/);
  t.notOk(existsSync(join(root, 'unreadable')), 'no files');

  const viaEnv = await run(process.execPath, [CLI, 'install-ca'], {
    PATH,
    DEMOMAIL_CA_PEM: mailCa.certPem,
    DEMOMAIL_CA_DIR: join(root, 'from-env'),
    DEMOMAIL_SYSTEM_CA_BUNDLE: join(root, 'nope.crt'),
  });
  t.equal(viaEnv.code, 0, viaEnv.stderr);
  t.ok(existsSync(join(root, 'from-env', 'ca.crt')), 'DEMOMAIL_CA_DIR and DEMOMAIL_SYSTEM_CA_BUNDLE are honoured');
});

// The init container runs with readOnlyRootFilesystem and an arbitrary non-root UID. Reproduce that with
// a private mount namespace (root remounted read-only, only DIR bind-mounted writable) and setpriv.
const isRoot = process.getuid?.() === 0;
const sandboxSkip = !isRoot
  ? (t.comment('install-ca integration: not root, read-only-root/non-root sandbox test SKIPPED'), 'needs root for unshare --mount')
  : missing('unshare and setpriv (util-linux)', has('unshare', ['--mount', 'true']) && has('setpriv', ['--version']));

// uid 65534 with one ambient capability, CAP_DAC_READ_SEARCH: the checkout and the Node binary may sit
// below a 0700 directory (a mktemp clone, /root/.cache), which an unprivileged user cannot enter. The
// capability only bypasses read/search permission checks; every write is still made as uid 65534 and
// still meets the read-only root filesystem, which is what this test is about.
const UNPRIVILEGED = '--reuid=65534 --regid=65534 --clear-groups --inh-caps=+dac_read_search --ambient-caps=+dac_read_search';

t.test('read-only root filesystem, non-root user: writes only into DIR', { skip: sandboxSkip }, async (t) => {
  const target = join(root, 'sandbox-dir');
  mkdirSync(target);
  chmodSync(target, 0o777);
  chmodSync(root, 0o755);
  const script = [
    'set -e',
    `mount --bind "${target}" "${target}"`,
    'mount -o remount,bind,ro /',
    // env -i: nothing from the test runner (tap instruments child Node processes through the environment).
    `exec env -i PATH="$PATH" DEMOMAIL_CA_PEM="$DEMOMAIL_CA_PEM" setpriv ${UNPRIVILEGED} "${process.execPath}" "${CLI}" install-ca --dir "${target}" --system-bundle "${SYSTEM_BUNDLE}"`,
  ].join('\n');
  const result = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { PATH, DEMOMAIL_CA_PEM: mailCa.certPem });
  t.equal(result.code, 0, result.stderr);
  t.same(listTree(target), expectedFiles);
  t.equal(statSync(join(target, 'ca.crt')).uid, 65534, 'written by the unprivileged user');
  t.equal(readFileSync(join(target, 'ca.crt'), 'utf8'), mailCa.certPem);

  // Without a writable DIR the same sandbox fails loudly instead of writing elsewhere.
  const readOnlyTarget = join(root, 'sandbox-readonly');
  const denied = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', [
    'set -e',
    'mount -o remount,bind,ro /',
    `exec env -i PATH="$PATH" DEMOMAIL_CA_PEM="$DEMOMAIL_CA_PEM" setpriv ${UNPRIVILEGED} "${process.execPath}" "${CLI}" install-ca --dir "${readOnlyTarget}"`,
  ].join('\n')], { PATH, DEMOMAIL_CA_PEM: mailCa.certPem });
  t.equal(denied.code, 1);
  t.equal(denied.stderr, `demomail install-ca: cannot create directory ${readOnlyTarget}: EROFS (${readOnlyTarget}); --dir must be a writable volume (an emptyDir)\n`);
});
