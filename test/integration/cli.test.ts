// The CLI as a person meets it: the compiled `demomail` binary (npm test builds dist/ first).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { loadSettings } from '../../src/cli.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(repo, 'dist/src/cli.js');
if (!existsSync(cli)) spawnSync('npx', ['tsc', '-p', '.'], { cwd: repo, stdio: 'inherit' });

const work = mkdtempSync(join(tmpdir(), 'demomail-cli-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const caFile = join(repo, 'test/fixtures/inject/ca/demomail-test-ca.pem');

function demomail(args: string[], input?: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input, env: { ...process.env, ...env }, timeout: 30_000 });
}

const pod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    demomail/inject: "true"
spec:
  containers:
  - name: app
    image: php:8.3-fpm
`;

t.test('inject reads stdin, uses --namespace and --config, and is stable', async (t) => {
  const config = join(work, 'config.yaml');
  writeFileSync(config, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demomail-config\ndata:\n  NAMESPACE: mail\n  MAIL_DOMAIN: example.test\n');
  const first = demomail(['inject', '-f', '-', '--ca-file', caFile, '-n', 'shop', '--config', config], pod);
  t.equal(first.status, 0, 'exit 0', { stderr: first.stderr });
  const [doc] = parseAllDocuments(first.stdout).map((d) => d.toJS() as { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } });
  const env = Object.fromEntries(doc!.spec.containers[0]!.env.map((e) => [e.name, e.value]));
  t.equal(env['DEMOMAIL_SMTP_HOST'], 'smtpdemo.mail.svc.cluster.local', 'settings from the ConfigMap given to --config');
  t.equal(env['DEMOMAIL_DOMAIN'], 'example.test');
  const again = demomail(['inject', '-f', '-', '--ca-file', caFile, '-n', 'shop', '--config', config], first.stdout);
  t.equal(again.status, 0);
  t.equal(again.stdout, first.stdout, 'injecting an injected manifest changes no byte');
});

t.test('inject: a skipped opted-in pod is a note on stderr, exit 0, output unchanged', async (t) => {
  const inKubeSystem = pod.replace('  name: web\n', '  name: web\n  namespace: kube-system\n');
  const r = demomail(['inject', '-f', '-', '--ca-file', caFile], inKubeSystem);
  t.equal(r.status, 0, 'exit 0');
  t.equal(r.stdout, inKubeSystem, 'byte for byte');
  t.match(r.stderr, /^demomail inject: warning: <stdin>:1: Pod kube-system\/web: opted in but not injected: namespace kube-system is never injected\n$/);
});

t.test('the CA file is used as the webhook uses it: comments and CRLF do not change the pod', async (t) => {
  const messy = join(work, 'messy-ca.pem');
  writeFileSync(messy, `# the mail CA\r\n${readFileSync(caFile, 'utf8').replace(/\n/g, '\r\n')}`);
  const clean = demomail(['inject', '-f', '-', '--ca-file', caFile, '-n', 'shop'], pod);
  const fromMessy = demomail(['inject', '-f', '-', '--ca-file', messy, '-n', 'shop'], pod);
  t.equal(fromMessy.status, 0, 'exit 0', { stderr: fromMessy.stderr });
  t.equal(fromMessy.stdout, clean.stdout, 'same bytes');
  const key = join(work, 'key.pem');
  writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');
  const refused = demomail(['inject', '-f', '-', '--ca-file', key], pod);
  t.equal(refused.status, 2, 'a key is never injected');
  t.match(refused.stderr, /--ca-file .*key\.pem: .*only CERTIFICATE blocks are accepted/);
});

t.test('errors name the input and the fix, and exit non-zero', async (t) => {
  const bad = join(work, 'bad.yaml');
  writeFileSync(bad, 'kind: Pod\nmetadata: [unclosed\n');
  const cases: Array<[string, string[], RegExp]> = [
    ['bad YAML', ['inject', '-f', bad, '--ca-file', caFile], /bad\.yaml/],
    ['missing file', ['inject', '-f', join(work, 'nope.yaml'), '--ca-file', caFile], /nope\.yaml.*ENOENT/],
    ['missing CA file', ['inject', '-f', bad, '--ca-file', join(work, 'nope.pem')], /--ca-file.*nope\.pem/],
    ['bad setting', ['inject', '-f', bad, '--ca-file', caFile], /MAIL_DOMAIN/],
  ];
  for (const [name, args, message] of cases) {
    const r = demomail(args, undefined, name === 'bad setting' ? { DEMOMAIL_MAIL_DOMAIN: 'not a domain' } : {});
    t.not(r.status, 0, `${name}: non-zero exit`);
    t.match(r.stderr, message, `${name}: message`);
  }
  const aliasBomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`)].join('\n');
  for (const [name, text] of [['an alias without its anchor', '*nowhere\n'], ['an alias bomb', aliasBomb]] as const) {
    const r = demomail(['inject', '-f', '-', '--ca-file', caFile], text);
    t.equal(r.status, 1, `${name}: exit 1`);
    t.match(r.stderr, /^demomail inject: <stdin>: invalid YAML/, `${name}: message names the input`);
  }
  const refused = demomail(
    ['inject', '-f', '-', '--ca-file', caFile],
    pod.replace('spec:\n', 'spec:\n  volumes:\n  - name: demomail-ca\n    emptyDir: {}\n'),
  );
  t.not(refused.status, 0, 'a refused pod fails the command');
  t.match(refused.stderr, /demomail-ca.*not ours/);
  const noCa = demomail(['install-ca', '--dir', join(work, 'x')], undefined, { DEMOMAIL_CA_PEM: '' });
  t.equal(noCa.status, 2);
  t.match(noCa.stderr, /DEMOMAIL_CA_PEM is empty/);
  const usage = demomail(['webhook']);
  t.not(usage.status, 0, 'missing required options');
  t.match(usage.stderr, /--cert/);
});

t.test('loadSettings: a plain YAML map, the ConfigMap, env over file, and clear errors', async (t) => {
  const map = join(work, 'map.yaml');
  writeFileSync(map, 'SMTP_USER: civi\nDEPLOY_MAILSERVER: 0\n');
  const s = await loadSettings(map, { DEMOMAIL_SMTP_USER: 'fromenv' });
  t.equal(s.smtpUser, 'fromenv', 'env wins over the file');
  t.equal(s.deployMailserver, false, 'YAML number 0 is read as the string "0"');
  const list = join(work, 'list.yaml');
  writeFileSync(list, '- a\n- b\n');
  await t.rejects(loadSettings(list, {}), /must be a map of settings/);
  const broken = join(work, 'broken.yaml');
  writeFileSync(broken, 'a: [\n');
  await t.rejects(loadSettings(broken, {}), /broken\.yaml is not valid YAML/);
  await t.rejects(loadSettings(join(work, 'missing.yaml'), {}), /cannot read --config .*ENOENT/);
  t.ok(readFileSync(caFile, 'utf8').includes('BEGIN CERTIFICATE'));
});
