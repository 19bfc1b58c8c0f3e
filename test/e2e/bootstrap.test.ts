// `demomail bootstrap` on a real control plane, run as a process with the demomail-bootstrap
// ServiceAccount's own token (TokenRequest), so the RBAC in manifests/ is proven sufficient — and, with
// `kubectl auth can-i`, not more than needed.
//
// Clock: the bootstrap has no test knob. "A leaf with 10 days left" is made by the real PKI functions
// with a `now` 355 days in the past, signed by the CA the first run stored, and written into the Secret.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { mailserverSans, settingsFrom } from '../../src/config.js';
import { createServerCertificate, splitPemCertificates } from '../../src/pki/certificates.js';
import { freePorts, type ControlPlane } from '../../scripts/lib/control-plane.js';
import { waitForWebhookInEffect } from '../../scripts/lib/local-webhook.js';
import { installBase, runCli, type CliRun } from '../helpers/bootstrap-process.js';
import { controlPlaneFor } from '../helpers/control-plane.js';
import { ensureBuilt } from '../helpers/greenmail.js';

type Json = Record<string, any>; // any: kubectl -o json output, read field by field
const settings = settingsFrom({});
const NS = settings.namespace;
const n = settings.names;
const SA = `system:serviceaccount:${NS}:${n.bootstrapServiceAccount}`;
const DAY = 24 * 60 * 60 * 1000;
const MANAGED = [
  ['secret', n.caSecret],
  ['configmap', n.caConfigMap],
  ['secret', n.mailserverTlsSecret],
  ['secret', n.webhookTlsSecret],
  ['secret', n.smtpSecret],
  ['secret', n.imapSecret],
  ['secret', n.imap2Secret],
  ['configmap', n.mailserverConfig],
  ['deployment', n.mailserverDeployment],
  ['service', n.smtpService],
  ['service', n.imapService],
  ['service', n.uiService],
] as const;

/** The CLI as the Job runs it: its own process, its own env (DEMOMAIL_* settings), the SA's kubeconfig. */
const bootstrap = (cli: string, kubeconfig: string, env: Record<string, string> = {}): Promise<CliRun> => runCli(cli, 'bootstrap', kubeconfig, env);

const secretData = (plane: ControlPlane, name: string, namespace = NS): Record<string, string> =>
  Object.fromEntries(Object.entries((plane.kubectlJson(['get', 'secret', name, '-n', namespace]) as Json)['data'] ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString('utf8')]));

function versions(plane: ControlPlane): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [kind, name] of MANAGED) {
    const r = plane.kubectl(['get', kind, name, '-n', NS, '-o', 'jsonpath={.metadata.resourceVersion}']);
    if (r.code === 0) out[`${kind}/${name}`] = r.stdout;
  }
  const mwc = plane.kubectlJson(['get', 'mutatingwebhookconfiguration', n.webhookConfiguration]) as Json;
  out['mutatingwebhookconfiguration'] = mwc['metadata']['resourceVersion'];
  return out;
}

function canI(plane: ControlPlane, verb: string, resource: string, namespace?: string): boolean {
  const r = plane.kubectl(['auth', 'can-i', verb, resource, `--as=${SA}`, ...(namespace ? ['-n', namespace] : [])]);
  if (r.code !== 0 && r.code !== 1) throw new Error(`kubectl auth can-i ${verb} ${resource}: ${r.stderr}`);
  return r.stdout.trim() === 'yes';
}

await t.test('demomail bootstrap on a real API server, as its own ServiceAccount', async (t) => {
  const plane = await controlPlaneFor(t, { controllerManager: false });
  if (!plane) return;
  const cli = ensureBuilt();
  const { dir, kubeconfig, token } = installBase(t, plane, NS, n.bootstrapServiceAccount);
  plane.kubectlOk(['create', 'namespace', 'plain']);

  let passwords: string[] = [];
  let caPem = '';

  await t.test('first run creates everything', async (t) => {
    const run = await bootstrap(cli, kubeconfig);
    t.equal(run.code, 0, `exit 0; stderr: ${run.stderr}`);
    t.comment(`first run: ${run.seconds.toFixed(2)} s as a process (${/done in ([\d.]+s)/.exec(run.stdout)?.[1] ?? '?'} inside runBootstrap)`);
    for (const [kind, name] of MANAGED) t.equal(plane.kubectl(['get', kind, name, '-n', NS]).code, 0, `${kind} ${name} exists`);
    t.match(run.stdout, /Secret demomail\/demomail-ca: created/);
    t.match(run.stdout, /MutatingWebhookConfiguration demomail: updated \(caBundle written on 2 webhook\(s\)\)/);

    const ca = secretData(plane, n.caSecret);
    caPem = ca['tls.crt'] ?? '';
    t.equal((plane.kubectlJson(['get', 'configmap', n.caConfigMap, '-n', NS]) as Json)['data']['ca.crt'], caPem, 'ConfigMap demomail-ca publishes the CA');
    const tls = secretData(plane, n.mailserverTlsSecret);
    t.ok(new X509Certificate(tls['tls.crt'] ?? '').verify(new X509Certificate(caPem).publicKey), 'mail cert signed by the CA');
    passwords = [n.smtpSecret, n.imapSecret, n.imap2Secret].map((name) => secretData(plane, name)['password'] ?? '');
    for (const p of passwords) t.match(p, /^[A-Za-z0-9]{24,}$/);
    for (const value of [...passwords, tls['keystore-password'] ?? '', ca['tls.key'] ?? '']) t.notOk(`${run.stdout}${run.stderr}`.includes(value), 'no secret in the log');

    const webhookCa = secretData(plane, n.webhookTlsSecret)['ca.crt'] ?? '';
    const mwc = plane.kubectlJson(['get', 'mutatingwebhookconfiguration', n.webhookConfiguration]) as Json;
    for (const w of mwc['webhooks']) t.equal(Buffer.from(w.clientConfig.caBundle, 'base64').toString('utf8'), webhookCa, `caBundle of ${w.name}`);

    for (const name of [n.smtpSecret, n.imapSecret, n.imap2Secret]) {
      t.same(secretData(plane, name, 'shop'), secretData(plane, name), `shop/${name} is a copy`);
    }
    t.same((plane.kubectlJson(['get', 'configmap', n.mailserverConfig, '-n', 'shop']) as Json)['data']['SMTP_USER_SECRET'], n.smtpSecret);
    t.not(plane.kubectl(['get', 'secret', n.smtpSecret, '-n', 'plain']).code, 0, 'no copy in a namespace without the label');
    const managers = ((plane.kubectlJson(['get', 'secret', n.caSecret, '-n', NS, '--show-managed-fields']) as Json)['metadata']['managedFields'] as Json[]).map((m) => `${m['manager']}/${m['operation']}`);
    t.same(managers, ['demomail/Update'], 'generated material: a plain create (POST), field manager demomail');
  });

  await t.test('second run: zero writes, every resourceVersion unchanged', async (t) => {
    const before = versions(plane);
    const run = await bootstrap(cli, kubeconfig);
    t.equal(run.code, 0, run.stderr);
    t.comment(`no-op run: ${run.seconds.toFixed(2)} s as a process (${/done in ([\d.]+s)/.exec(run.stdout)?.[1] ?? '?'} inside runBootstrap)`);
    t.match(run.stdout, /0 created, 0 updated, 17 unchanged, 0 skipped, 0 deleted; 0 write\(s\)/);
    t.same(versions(plane), before);
  });

  await t.test('Service demomail-api of an earlier release: deleted once, then zero writes again', async (t) => {
    plane.kubectlOk(['create', 'service', 'clusterip', n.apiService, '-n', NS, '--tcp=8080:8080']);
    const run = await bootstrap(cli, kubeconfig);
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, new RegExp(`Service ${NS}/${n.apiService}: deleted`));
    t.not(plane.kubectl(['get', 'service', n.apiService, '-n', NS]).code, 0, 'gone');
    const before = versions(plane);
    const again = await bootstrap(cli, kubeconfig);
    t.match(again.stdout, /0 deleted; 0 write\(s\)/);
    t.same(versions(plane), before);
    t.notOk(canI(plane, 'delete', `services/${n.smtpService}`, NS), 'delete only on the obsolete Service');
  });

  await t.test('mail-server certificate Secret deleted: recreated by the same CA, passwords unchanged', async (t) => {
    plane.kubectlOk(['delete', 'secret', n.mailserverTlsSecret, '-n', NS]);
    const run = await bootstrap(cli, kubeconfig);
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /Secret demomail\/demomail-mailserver-tls: created/);
    t.match(run.stdout, /Deployment demomail\/demomail-mailserver: updated \(spec\.template\.metadata\.annotations\.demomail\/tls-checksum differed\)/, 'the pods roll');
    t.equal(secretData(plane, n.caSecret)['tls.crt'], caPem, 'same CA');
    t.ok(new X509Certificate(secretData(plane, n.mailserverTlsSecret)['tls.crt'] ?? '').verify(new X509Certificate(caPem).publicKey), 'signed by it');
    t.same([n.smtpSecret, n.imapSecret, n.imap2Secret].map((name) => secretData(plane, name)['password']), passwords, 'passwords unchanged');
  });

  await t.test('a leaf with 10 days left is renewed, keeping CA and passwords', async (t) => {
    const ca = secretData(plane, n.caSecret);
    const old = createServerCertificate({
      ca: { certPem: ca['tls.crt'] ?? '', keyPem: ca['tls.key'] ?? '' },
      commonName: 'smtpdemo.demomail.svc.cluster.local',
      sans: mailserverSans(settings),
      now: new Date(Date.now() - 355 * DAY),
    });
    t.ok(Date.parse(new X509Certificate(old.certPem).validTo) - Date.now() < 11 * DAY, 'the planted certificate expires within 10 days');
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    plane.kubectlOk(['patch', 'secret', n.mailserverTlsSecret, '-n', NS, '--type', 'merge', '-p', JSON.stringify({ data: { 'tls.crt': b64(old.certPem), 'tls.key': b64(old.keyPem) } })]);
    const run = await bootstrap(cli, kubeconfig);
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /demomail-mailserver-tls: certificate renewed — less than a third of the lifetime remains/);
    const renewed = new X509Certificate(secretData(plane, n.mailserverTlsSecret)['tls.crt'] ?? '');
    t.ok(Date.parse(renewed.validTo) > Date.now() + 360 * DAY, 'a fresh one-year certificate');
    t.ok(renewed.verify(new X509Certificate(caPem).publicKey));
    t.equal(secretData(plane, n.caSecret)['tls.crt'], caPem);
    t.same([n.smtpSecret, n.imapSecret, n.imap2Secret].map((name) => secretData(plane, name)['password']), passwords);
  });

  await t.test('a newly labelled namespace receives the copies on the next run', async (t) => {
    plane.kubectlOk(['label', 'namespace', 'plain', 'demomail/injection=enabled']);
    const run = await bootstrap(cli, kubeconfig);
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /Secret plain\/demomail-smtp: created/);
    t.equal(secretData(plane, n.imapSecret, 'plain')['password'], passwords[1]);
  });

  await t.test('DEPLOY_MAILSERVER=0: no mail-server Deployment or Services', async (t) => {
    for (const [kind, name] of MANAGED.filter(([kind]) => kind === 'deployment' || kind === 'service')) plane.kubectlOk(['delete', kind, name, '-n', NS]);
    const run = await bootstrap(cli, kubeconfig, { DEMOMAIL_DEPLOY_MAILSERVER: '0' });
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, /; 0 write\(s\)/, 'everything else is already in place');
    for (const [kind, name] of MANAGED.filter(([kind]) => kind === 'deployment' || kind === 'service')) {
      t.not(plane.kubectl(['get', kind, name, '-n', NS]).code, 0, `${kind} ${name} not recreated`);
    }
    t.equal(plane.kubectl(['get', 'secret', n.webhookTlsSecret, '-n', NS]).code, 0, 'PKI still there');
  });

  await t.test('a pod created through the webhook carries the CA that is in demomail-ca', async (t) => {
    // The real webhook process with what the bootstrap wrote, reached through the production `service:`
    // reference: an ExternalName Service sends the API server to localhost, and it verifies the serving
    // certificate for demomail-webhook.demomail.svc against the caBundle the bootstrap set.
    const tlsDir = join(dir, 'webhook');
    mkdirSync(tlsDir, { recursive: true });
    const tls = secretData(plane, n.webhookTlsSecret);
    writeFileSync(join(tlsDir, 'tls.crt'), tls['tls.crt'] ?? '');
    writeFileSync(join(tlsDir, 'tls.key'), tls['tls.key'] ?? '', { mode: 0o600 });
    const mailCa = (plane.kubectlJson(['get', 'configmap', n.caConfigMap, '-n', NS]) as Json)['data']['ca.crt'] as string;
    writeFileSync(join(tlsDir, 'ca.crt'), mailCa);
    const [port] = (await freePorts(1)) as [number];
    const webhook = spawn(
      process.execPath,
      [cli, 'webhook', '--cert', join(tlsDir, 'tls.crt'), '--key', join(tlsDir, 'tls.key'), '--ca-file', join(tlsDir, 'ca.crt'), '--port', String(port), '--host', '127.0.0.1'],
      { env: { ...process.env, DEMOMAIL_DRAIN_SECONDS: '0', DEMOMAIL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let webhookErr = '';
    webhook.stderr.on('data', (c: Buffer) => (webhookErr += c.toString('utf8')));
    t.teardown(() => {
      if (webhook.exitCode === null) webhook.kill('SIGKILL');
    });
    plane.kubectlOk(['delete', 'service', n.webhookService, '-n', NS, '--ignore-not-found']);
    plane.kubectlOk(['create', 'service', 'externalname', n.webhookService, '-n', NS, '--external-name', 'localhost']);
    const mwc = plane.kubectlJson(['get', 'mutatingwebhookconfiguration', n.webhookConfiguration]) as Json;
    const portPatch = (mwc['webhooks'] as Json[]).map((_w, i) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig/service/port`, value: port }));
    plane.kubectlOk(['patch', 'mutatingwebhookconfiguration', n.webhookConfiguration, '--type', 'json', '-p', JSON.stringify(portPatch)]);
    // No controller-manager here: the ServiceAccount admission plugin needs the namespace's default SA.
    if (plane.kubectl(['get', 'serviceaccount', 'default', '-n', 'shop']).code !== 0) plane.kubectlOk(['create', 'serviceaccount', 'default', '-n', 'shop']);
    await waitForWebhookInEffect(plane, 'shop', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\nwebhook stderr: ${webhookErr}`);
    });
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'civicrm', namespace: 'shop' },
      spec: { automountServiceAccountToken: false, containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
    };
    const created = JSON.parse(plane.kubectlOk(['create', '-f', '-', '-o', 'json'], { input: JSON.stringify(pod) })) as Json;
    const init = (created['spec']['initContainers'] as Json[] | undefined)?.[0];
    t.equal(init?.['name'], 'demomail-ca-init', 'injected through the namespace label');
    const caEnv = (init?.['env'] as Json[] | undefined)?.find((e) => e['name'] === 'DEMOMAIL_CA_PEM')?.['value'];
    t.equal(caEnv, mailCa, 'DEMOMAIL_CA_PEM is the CA published in ConfigMap demomail-ca');
    t.equal(caEnv, secretData(plane, n.caSecret)['tls.crt'], 'which is the CA that signed the mail-server certificate');
  });

  await t.test('the ServiceAccount can do what the bootstrap needs, and no more', async (t) => {
    t.ok(canI(plane, 'get', `secret/${n.caSecret}`, NS));
    t.ok(canI(plane, 'patch', `secret/${n.mailserverTlsSecret}`, NS));
    t.ok(canI(plane, 'create', `secret/${n.smtpSecret}`, 'shop'), 'SSA-create of a copy, by name');
    t.ok(canI(plane, 'list', 'namespaces'));
    t.ok(canI(plane, 'patch', `mutatingwebhookconfiguration/${n.webhookConfiguration}`));
    t.notOk(canI(plane, 'list', 'secrets', NS), 'list secrets');
    t.notOk(canI(plane, 'list', 'secrets', 'shop'), 'list secrets elsewhere');
    t.notOk(canI(plane, 'watch', 'secrets', NS), 'watch secrets');
    t.notOk(canI(plane, 'delete', `secret/${n.caSecret}`, NS), 'delete secrets');
    t.notOk(canI(plane, 'get', 'secret/someone-elses', NS), 'get a Secret with another name');
    t.notOk(canI(plane, 'get', 'secret/someone-elses', 'shop'), 'get another Secret in an opted-in namespace');
    t.ok(canI(plane, 'create', 'secrets', NS), 'POST create in demomail (names confined by ValidatingAdmissionPolicy demomail-bootstrap-secret-names)');
    t.notOk(canI(plane, 'create', 'secrets', 'shop'), 'create a Secret without a name (POST) in a tenant namespace');
    t.notOk(canI(plane, 'create', 'pods', NS), 'create pods');
    t.notOk(canI(plane, 'patch', 'mutatingwebhookconfiguration/other'), 'patch another webhook configuration');
    t.notOk(canI(plane, 'patch', 'namespaces/shop'), 'patch namespaces');
  });

  await t.test('CA rollover is not triggered by a healthy CA: bundle stays one certificate', async (t) => {
    t.equal(splitPemCertificates((plane.kubectlJson(['get', 'configmap', n.caConfigMap, '-n', NS]) as Json)['data']['ca.crt']).length, 1);
  });

  await t.test('without RBAC for an object the run fails, naming the object and the permission', async (t) => {
    // A second ServiceAccount with no RBAC at all: the first request already fails.
    plane.kubectlOk(['create', 'serviceaccount', 'nobody', '-n', NS]);
    const nobody = plane.kubectlOk(['create', 'token', 'nobody', '-n', NS, '--duration', '10m']).trim();
    const file = join(dir, 'nobody.kubeconfig');
    writeFileSync(file, plane.kubeconfigFor(nobody, 'nobody'), { mode: 0o600 });
    const run = await bootstrap(cli, file);
    t.equal(run.code, 1);
    t.match(run.stderr, /demomail bootstrap: namespaces: list forbidden — the bootstrap's ServiceAccount needs RBAC verb "list" on namespaces/);
  });

  await t.test('an unreachable API server: bounded retries, then a non-zero exit saying what failed', async (t) => {
    const file = join(dir, 'unreachable.kubeconfig');
    writeFileSync(file, plane.kubeconfigFor(token).replace(/https:\/\/127\.0\.0\.1:\d+/, 'https://127.0.0.1:1'), { mode: 0o600 });
    const run = await bootstrap(cli, file);
    t.equal(run.code, 1);
    t.match(run.stderr, /namespaces: list could not reach the API server: ECONNREFUSED.*gave up after 6 attempts/);
    t.ok(run.seconds < 60, `gave up in ${run.seconds.toFixed(1)} s`);
  });

});
