import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { settingsFrom } from '../config.js';
import { runBootstrap } from './main.js';

t.test('--output DIR: one YAML file per object, stable names, no cluster', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demomail-output-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  // No kubeconfig exists at this path: any attempt to reach a cluster would throw.
  const result = await runBootstrap({ settings: settingsFrom({}), outputDir: join(dir, 'out'), kubeconfig: join(dir, 'no-such-kubeconfig'), log: (l) => lines.push(l) });
  const files = (await readdir(join(dir, 'out'))).sort();
  t.same(files, [
    'configmap-config-mailserver.yaml',
    'configmap-demomail-ca.yaml',
    'deployment-demomail-mailserver.yaml',
    'secret-demomail-ca.yaml',
    'secret-demomail-imap.yaml',
    'secret-demomail-imap2.yaml',
    'secret-demomail-mailserver-tls.yaml',
    'secret-demomail-smtp.yaml',
    'secret-demomail-webhook-tls.yaml',
    'service-demomail-ui.yaml',
    'service-imapdemo.yaml',
    'service-smtpdemo.yaml',
  ]);
  t.equal(result.writes, 0);
  t.equal(result.files.length, 12);
  const smtp = await readFile(join(dir, 'out', 'secret-demomail-smtp.yaml'), 'utf8');
  t.match(smtp, /^# Secret demomail\/demomail-smtp, written by `demomail bootstrap --output`\./);
  t.match(smtp, /SECRET MATERIAL: generated fresh by this run/);
  const doc = parse(smtp);
  t.equal(doc.kind, 'Secret');
  t.equal(Buffer.from(doc.data.username, 'base64').toString(), 'smtp@demomail.test');
  t.equal((await stat(join(dir, 'out', 'secret-demomail-ca.yaml'))).mode & 0o777, 0o600, 'private keys are not world-readable');
  t.match(await readFile(join(dir, 'out', 'secret-demomail-webhook-tls.yaml'), 'utf8'), /must carry ca.crt of this Secret as caBundle/);
  const password = Buffer.from(doc.data.password, 'base64').toString();
  t.notOk(lines.join('\n').includes(password), 'the log never shows a password');
  t.ok(lines.some((l) => l.includes('no cluster touched')));
});

t.test('--output with DEPLOY_MAILSERVER=0 writes no mail-server objects', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'demomail-output-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await runBootstrap({ settings: settingsFrom({ DEPLOY_MAILSERVER: '0' }), outputDir: dir, log: () => {} });
  const files = await readdir(dir);
  t.notOk(files.some((f) => f.startsWith('deployment-') || f.startsWith('service-')));
  t.equal(files.length, 8);
});
