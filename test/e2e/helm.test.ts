// charts/demomail with the real helm v3 on a real control plane (etcd + kube-apiserver +
// kube-controller-manager: job-controller, garbage collector, namespace controller). There is no kubelet:
// scripts/lib/job-runner.ts runs the Jobs' pods locally (`node dist/src/cli.js ARGS`, env from the
// cluster, a token of the pod's own ServiceAccount) and reports them Succeeded/Failed through pods/status,
// and reports the webhook pods Ready once their certificate exists, so `helm install --wait
// --wait-for-jobs` and the uninstall hook behave exactly as on a node.
//
// A: default values (the chart creates Namespace demomail; release in `default`): install → the reconcile
//    Job ran as demomail-bootstrap → PKI, credentials, copies, caBundle; upgrade with changed values →
//    the reconcile ran again, CA / passwords / caBundle unchanged; two upgrades with the same values → no
//    object changes; an opted-in pod is injected; uninstall → the cluster is as before the install.
// B: mail.deployMailserver "0" into an existing namespace (namespace.create=false): no mail server, PKI and
//    webhook work; uninstall → the cleanup hook removes what the bootstrap made, the namespace stays empty.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { DEFAULTS, settingsFrom } from '../../src/config.js';
import { freePorts, repoRoot, type ControlPlane } from '../../scripts/lib/control-plane.js';
import { startJobRunner, type JobRunner } from '../../scripts/lib/job-runner.js';
import { waitForWebhookInEffect } from '../../scripts/lib/local-webhook.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { controlPlaneFor, ensureBuilt } from '../helpers/control-plane.js';
import { CHART, HELM_VERSIONS, helmBinary, helmRunner, type Helm } from '../helpers/helm.js';

type Json = Record<string, any>; // any: kubectl -o json output, read field by field
const n = settingsFrom({}).names;
const NS = 'demomail';
const IMAGE = DEFAULTS['IMAGE'] ?? '';
/** The reconcile Job's name prefix (the chart appends a hash of its inputs and the release revision). */
const BOOTSTRAP_JOB = n.bootstrapServiceAccount;
const WAIT = ['--wait', '--wait-for-jobs', '--timeout', '3m'];
/** Changed values for the upgrades: one the chart applies (the webhook configuration) and one only the
 * reconcile applies (the mail server's memory). Not EXTRA_SANS: the mail CA's name constraints are fixed. */
const CHANGED = ['--set', 'webhook.timeoutSeconds=4', '--set', 'mailserver.memoryLimit=640Mi'];
const greenmailMemory = (plane: ControlPlane) =>
  (plane.kubectlJson<Json>(['get', 'deployment', n.mailserverDeployment, '-n', NS])['spec']['template']['spec']['containers'] as Json[]).find((c) => c['name'] === 'greenmail')?.['resources']['limits']['memory'];
/** The reconcile Job is replaced on every upgrade (a new revision, a new name); its pod goes with it. */
const transient = (key: string) => key.startsWith(`Job/${NS}/${BOOTSTRAP_JOB}-`) || key.startsWith(`Pod/${NS}/${BOOTSTRAP_JOB}-`);
const CREDENTIALS = [n.smtpSecret, n.imapSecret, n.imap2Secret];

const decoded = (data: Record<string, string> | undefined) => Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
const secretData = (plane: ControlPlane, name: string, namespace = NS) => decoded(plane.kubectlJson<Json>(['get', 'secret', name, '-n', namespace])['data']);
const caBundles = (plane: ControlPlane) =>
  (plane.kubectlJson<Json>(['get', 'mutatingwebhookconfiguration', n.webhookConfiguration])['webhooks'] as Json[]).map((w) => w['clientConfig']['caBundle'] as string | undefined);

/** Every object the API server can list (Events and Leases aside), as kind/namespace/name → resourceVersion. */
function clusterObjects(plane: ControlPlane): Map<string, string> {
  const resources = plane
    .kubectlOk(['api-resources', '--verbs=list', '-o', 'name'])
    .trim()
    .split('\n')
    .filter((r) => !/^(events|events\.events\.k8s\.io|leases\.coordination\.k8s\.io)$/.test(r));
  const list = plane.kubectlJson<{ items: Json[] }>(['get', resources.join(','), '-A']);
  return new Map(
    list.items
      // Helm's release records: one per revision, Helm's own bookkeeping.
      .filter((o) => !(o['kind'] === 'Secret' && o['type'] === 'helm.sh/release.v1'))
      .map((o) => [`${o['kind']}/${o['metadata']['namespace'] ?? ''}/${o['metadata']['name']}`, String(o['metadata']['resourceVersion'])]),
  );
}

function difference(before: Map<string, string>, after: Map<string, string>, compareVersions: boolean): string[] {
  const out: string[] = [];
  for (const key of after.keys()) if (!before.has(key)) out.push(`+ ${key}`);
  for (const key of before.keys()) if (!after.has(key)) out.push(`- ${key}`);
  if (compareVersions) for (const [key, v] of after) if (before.has(key) && before.get(key) !== v) out.push(`~ ${key}`);
  return out.sort();
}

/**
 * The differences between `before` and the cluster once the controllers have settled (namespace deletion,
 * garbage collection): waits up to `timeoutMs` for none, then returns what is still different.
 */
async function settledDifference(plane: ControlPlane, before: Map<string, string>, o: { versions: boolean; ignore?: (key: string) => boolean; timeoutMs: number }): Promise<string[]> {
  const current = () => difference(before, clusterObjects(plane), o.versions).filter((line) => !o.ignore?.(line.slice(2)));
  return waitFor('the cluster to settle', () => {
    const d = current();
    return d.length === 0 ? d : undefined;
  }, o.timeoutMs).catch(() => current());
}

async function helmOk(t: Test, helm: Helm, args: string[]): Promise<string> {
  const started = performance.now();
  const r = await helm(args);
  t.comment(`helm ${args[0]}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * The real webhook process with the certificates the bootstrap wrote, reached through the production
 * `service:` reference (Service demomail-webhook swapped for an ExternalName to localhost, the port patched,
 * as in bootstrap.test.ts); returns an opted-in pod created in `namespace`.
 */
async function createInjectedPod(t: Test, plane: ControlPlane, cli: string, dir: string, namespace: string, ns = NS): Promise<Json> {
  const tlsDir = join(dir, `webhook-${ns}`);
  mkdirSync(tlsDir, { recursive: true });
  const tls = secretData(plane, n.webhookTlsSecret, ns);
  writeFileSync(join(tlsDir, 'tls.crt'), tls['tls.crt'] ?? '');
  writeFileSync(join(tlsDir, 'tls.key'), tls['tls.key'] ?? '', { mode: 0o600 });
  writeFileSync(join(tlsDir, 'ca.crt'), plane.kubectlJson<Json>(['get', 'configmap', n.caConfigMap, '-n', ns])['data']['ca.crt']);
  const [port] = (await freePorts(1)) as [number];
  const webhook = spawn(
    process.execPath,
    [cli, 'webhook', '--cert', join(tlsDir, 'tls.crt'), '--key', join(tlsDir, 'tls.key'), '--ca-file', join(tlsDir, 'ca.crt'), '--port', String(port), '--host', '127.0.0.1'],
    { env: { ...process.env, DEMOMAIL_NAMESPACE: ns, DEMOMAIL_DRAIN_SECONDS: '0', DEMOMAIL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let webhookErr = '';
  webhook.stderr.on('data', (c: Buffer) => (webhookErr += c.toString('utf8')));
  try {
    plane.kubectlOk(['delete', 'service', n.webhookService, '-n', ns]);
    plane.kubectlOk(['create', 'service', 'externalname', n.webhookService, '-n', ns, '--external-name', 'localhost']);
    const mwc = plane.kubectlJson<Json>(['get', 'mutatingwebhookconfiguration', n.webhookConfiguration]);
    const portPatch = (mwc['webhooks'] as Json[]).map((_w, i) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig/service/port`, value: port }));
    plane.kubectlOk(['patch', 'mutatingwebhookconfiguration', n.webhookConfiguration, '--type', 'json', '-p', JSON.stringify(portPatch)]);
    await plane.waitForServiceAccount(namespace);
    await waitForWebhookInEffect(plane, namespace, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\nwebhook stderr: ${webhookErr}`);
    });
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'civicrm', namespace },
      spec: { automountServiceAccountToken: false, containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
    };
    return JSON.parse(plane.kubectlOk(['create', '-f', '-', '-o', 'json'], { input: JSON.stringify(pod) })) as Json;
  } finally {
    webhook.kill('SIGKILL');
    t.comment(webhookErr.trim() === '' ? 'webhook: no warnings' : `webhook stderr: ${webhookErr.trim().slice(0, 500)}`);
  }
}

function checkInjected(t: Test, plane: ControlPlane, pod: Json, ns = NS): void {
  const init = (pod['spec']['initContainers'] as Json[] | undefined)?.[0];
  t.equal(init?.['name'], 'demomail-ca-init', 'the opted-in pod got the init container');
  const caEnv = (init?.['env'] as Json[] | undefined)?.find((e) => e['name'] === 'DEMOMAIL_CA_PEM')?.['value'];
  t.equal(caEnv, plane.kubectlJson<Json>(['get', 'configmap', n.caConfigMap, '-n', ns])['data']['ca.crt'], 'with the CA the bootstrap published');
  t.equal(caEnv, secretData(plane, n.caSecret, ns)['tls.crt'], 'which is the CA in Secret demomail-ca');
}

const lastRun = (runner: JobRunner, job: string) => runner.runsOf(job).at(-1);

await t.test('helm install / upgrade / uninstall on a real control plane', async (t) => {
  const bin = helmBinary(t);
  if (bin === undefined) return;
  const plane = await controlPlaneFor(t);
  if (!plane) return;
  ensureBuilt();
  const cli = join(repoRoot(), 'dist', 'src', 'cli.js');
  const dir = mkdtempSync(join(tmpdir(), 'demomail-helm-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const helm = helmRunner(bin, join(dir, 'helm-home'), plane.kubeconfigPath);
  const runner = await startJobRunner(plane, { image: IMAGE, webhookReadiness: true, log: (line) => t.comment(line) });
  t.teardown(() => runner.stop());
  const started = performance.now();

  // Application namespaces: one opted in (receives copies), one holding the seed platform's own
  // ConfigMap config-mailserver (not ours: the cleanup must keep it).
  plane.kubectlOk(['create', 'namespace', 'shop']);
  plane.kubectlOk(['label', 'namespace', 'shop', 'demomail/injection=enabled']);
  plane.kubectlOk(['create', 'namespace', 'seed']);
  plane.kubectlOk(['create', 'configmap', n.mailserverConfig, '-n', 'seed', '--from-literal=SMTP_USER_SECRET=seed-smtp']);
  await plane.waitForServiceAccount('shop');
  await plane.waitForServiceAccount('seed');
  const pristine = clusterObjects(plane);
  t.ok(pristine.size > 50, `the snapshot lists every object the API server holds (${pristine.size} before the install)`);

  await t.test('A: default values', async (t) => {
    let caPem = '';
    let passwords: string[] = [];
    let bundles: (string | undefined)[] = [];

    await t.test('a typo in a value key fails the install, naming the key, before anything is created', async (t) => {
      const r = await helm(['install', 'demomail', CHART, '--namespace', 'default', '--set', 'mail.deployMailServer=1']);
      t.not(r.code, 0);
      t.match(r.stderr, /at '\/mail': additional properties 'deployMailServer' not allowed/);
      t.same(difference(pristine, clusterObjects(plane), false), [], 'no object created');
    });

    await t.test('install --wait: the reconcile Job ran as its ServiceAccount and made PKI, credentials, copies, caBundle', async (t) => {
      const out = await helmOk(t, helm, ['install', 'demomail', CHART, '--namespace', 'default', ...WAIT]);
      t.match(out, /STATUS: deployed/);
      t.match(out, /kubectl label namespace MY-APP demomail\/injection=enabled/, 'NOTES say what to label');
      t.match(out, /kubectl -n demomail port-forward svc\/demomail-ui 8025/, 'and how to reach the viewer');
      const run = lastRun(runner, BOOTSTRAP_JOB);
      t.equal(runner.runsOf(BOOTSTRAP_JOB).length, 1, 'one reconcile run');
      t.equal(run?.exitCode, 0, `bootstrap exit 0: ${run?.stderr}`);
      t.equal(run?.serviceAccount, n.bootstrapServiceAccount, "with the Job's own ServiceAccount token");
      t.same(run?.args, ['bootstrap']);
      const jobs = plane.kubectlJson<{ items: Json[] }>(['get', 'jobs', '-n', NS, '-l', 'app.kubernetes.io/component=bootstrap']).items;
      t.same(jobs.map((j) => j['metadata']['name']), [run?.job], 'one reconcile Job, the one that ran');
      t.ok((jobs[0]?.['status']['conditions'] as Json[]).some((c) => c['type'] === 'Complete' && c['status'] === 'True'), 'Complete (job-controller)');
      t.equal(plane.kubectlJson<Json>(['get', 'deployment', n.webhookDeployment, '-n', NS])['status']['availableReplicas'], 2, 'webhook Deployment available: --wait was satisfied');
      caPem = secretData(plane, n.caSecret)['tls.crt'] ?? '';
      t.match(caPem, /BEGIN CERTIFICATE/);
      passwords = CREDENTIALS.map((name) => secretData(plane, name)['password'] ?? '');
      for (const p of passwords) t.match(p, /^[A-Za-z0-9]{24,}$/);
      for (const name of CREDENTIALS) t.same(secretData(plane, name, 'shop'), secretData(plane, name), `shop/${name} is a copy`);
      bundles = caBundles(plane);
      const webhookCa = Buffer.from(secretData(plane, n.webhookTlsSecret)['ca.crt'] ?? '').toString('base64');
      t.same(bundles, [webhookCa, webhookCa], 'caBundle on both entries');
      t.equal(plane.kubectl(['get', 'deployment', n.mailserverDeployment, '-n', NS]).code, 0, 'mail server Deployment');
      t.equal(plane.kubectlJson<Json>(['get', 'namespace', NS])['metadata']['labels']['pod-security.kubernetes.io/enforce'], 'restricted');
    });

    await t.test('upgrade with changed values: reconcile ran again; CA, passwords and caBundle unchanged', async (t) => {
      const tlsBefore = secretData(plane, n.mailserverTlsSecret)['tls.crt'];
      const caVersion = plane.kubectlJson<Json>(['get', 'secret', n.caSecret, '-n', NS])['metadata']['resourceVersion'];
      const firstJob = lastRun(runner, BOOTSTRAP_JOB)?.job;
      await helmOk(t, helm, ['upgrade', 'demomail', CHART, '--namespace', 'default', ...WAIT, ...CHANGED]);
      t.equal(runner.runsOf(BOOTSTRAP_JOB).length, 2, 'the reconcile ran on the upgrade, as a new Job (no immutable-Job error)');
      t.not(lastRun(runner, BOOTSTRAP_JOB)?.job, firstJob);
      t.equal(plane.kubectl(['get', 'job', firstJob ?? '', '-n', NS]).code, 1, "helm deleted the previous revision's Job");
      const run = lastRun(runner, BOOTSTRAP_JOB);
      t.equal(run?.exitCode, 0, run?.stderr ?? '');
      t.match(run?.stdout, /Deployment demomail\/demomail-mailserver: updated/, 'the reconcile applied the new setting');
      t.same(greenmailMemory(plane), '640Mi', 'MAILSERVER_MEMORY_LIMIT reached the mail server');
      t.equal(secretData(plane, n.mailserverTlsSecret)['tls.crt'], tlsBefore, 'mail server certificate kept');
      t.equal(secretData(plane, n.caSecret)['tls.crt'], caPem, 'same CA');
      t.equal(plane.kubectlJson<Json>(['get', 'secret', n.caSecret, '-n', NS])['metadata']['resourceVersion'], caVersion, 'Secret demomail-ca not even rewritten');
      t.same(CREDENTIALS.map((name) => secretData(plane, name)['password']), passwords, 'same passwords');
      const mwc = plane.kubectlJson<Json>(['get', 'mutatingwebhookconfiguration', n.webhookConfiguration]);
      t.same((mwc['webhooks'] as Json[]).map((w) => w['timeoutSeconds']), [4, 4], 'helm changed the webhook configuration');
      t.same(caBundles(plane), bundles, "and left the bootstrap's caBundle alone (three-way merge: a field in neither manifest is kept)");
    });

    await t.test('upgrade twice with the same values: no object changes', async (t) => {
      const args = ['upgrade', 'demomail', CHART, '--namespace', 'default', ...WAIT, ...CHANGED];
      await helmOk(t, helm, args);
      const before = clusterObjects(plane);
      await helmOk(t, helm, args);
      t.equal(runner.runsOf(BOOTSTRAP_JOB).length, 4, 'the reconcile ran on each upgrade');
      t.match(lastRun(runner, BOOTSTRAP_JOB)?.stdout, /; 0 write\(s\)/, 'and found nothing to do');
      const changed = await settledDifference(plane, before, { versions: true, ignore: transient, timeoutMs: 30_000 });
      t.same(changed, [], 'every object has the same resourceVersion');
      t.same(caBundles(plane), bundles);
    });

    await t.test('an opted-in pod is injected with the CA the bootstrap made', async (t) => {
      const pod = await createInjectedPod(t, plane, cli, dir, 'shop');
      checkInjected(t, plane, pod);
      plane.kubectlOk(['delete', 'pod', 'civicrm', '-n', 'shop', '--wait=false']);
    });

    await t.test("the README's kubectl cleanup selector finds exactly the bootstrap's objects", async (t) => {
      const found = plane.kubectlOk(['get', 'secrets,configmaps', '--all-namespaces', '-l', 'app.kubernetes.io/managed-by=demomail', '-o', 'jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{"\\n"}{end}']);
      const copies = found.trim().split('\n').filter((line) => !line.includes(`/${NS}/`)).sort();
      t.same(copies, ['ConfigMap/shop/config-mailserver', ...CREDENTIALS.map((name) => `Secret/shop/${name}`).sort()], 'the copies in shop, not the seed ConfigMap');
      t.notOk(found.includes(n.config), 'never the chart-owned settings');
    });

    await t.test('uninstall: the cleanup hook ran, nothing of demomail is left', async (t) => {
      await helmOk(t, helm, ['uninstall', 'demomail', '--namespace', 'default', '--timeout', '3m']);
      const cleanup = runner.runsOf('demomail-cleanup').at(-1);
      t.equal(cleanup?.exitCode, 0, `cleanup exit 0: ${cleanup?.stderr}`);
      t.equal(cleanup?.serviceAccount, 'demomail-cleanup');
      t.match(cleanup?.stdout, /Secret shop\/demomail-smtp: deleted/);
      t.match(cleanup?.stdout, /ConfigMap seed\/config-mailserver: kept — not created by demomail/);
      const left = await settledDifference(plane, pristine, { versions: false, timeoutMs: 120_000 });
      t.same(left, [], 'every namespaced and cluster object is as before the install');
      t.equal(plane.kubectlJson<Json>(['get', 'configmap', n.mailserverConfig, '-n', 'seed'])['data']['SMTP_USER_SECRET'], 'seed-smtp', "the seed's own config-mailserver kept");
    });
  });

  await t.test('B: mail.deployMailserver "0" into an existing namespace', async (t) => {
    plane.kubectlOk(['create', 'namespace', NS]);
    await plane.waitForServiceAccount(NS);
    const before = clusterObjects(plane);

    await t.test('install: no mail server; PKI, credentials and caBundle', async (t) => {
      const out = await helmOk(t, helm, ['install', 'demomail', CHART, '--namespace', NS, '--set', 'namespace.create=false', '--set-string', 'mail.deployMailserver=0', ...WAIT]);
      t.match(out, /no mail server was deployed/);
      t.equal(lastRun(runner, BOOTSTRAP_JOB)?.exitCode, 0, lastRun(runner, BOOTSTRAP_JOB)?.stderr ?? '');
      for (const [kind, name] of [['deployment', n.mailserverDeployment], ['service', n.smtpService], ['service', n.imapService]] as const) {
        t.equal(plane.kubectl(['get', kind, name, '-n', NS]).code, 1, `no ${kind} ${name}`);
      }
      for (const name of [n.caSecret, n.webhookTlsSecret, ...CREDENTIALS]) t.equal(plane.kubectl(['get', 'secret', name, '-n', NS]).code, 0, `Secret ${name}`);
      t.equal(plane.kubectl(['get', 'secret', n.smtpSecret, '-n', 'shop']).code, 0, 'copies in shop');
      t.ok(caBundles(plane).every((b) => typeof b === 'string' && b.length > 0), 'caBundle written');
    });

    await t.test('the webhook injects an opted-in pod', async (t) => {
      const pod = await createInjectedPod(t, plane, cli, dir, 'shop');
      checkInjected(t, plane, pod);
      plane.kubectlOk(['delete', 'pod', 'civicrm', '-n', 'shop', '--wait=false']);
    });

    await t.test('uninstall: the namespace stays, nothing of demomail in it or elsewhere', async (t) => {
      await helmOk(t, helm, ['uninstall', 'demomail', '--namespace', NS, '--timeout', '3m']);
      t.equal(runner.runsOf('demomail-cleanup').at(-1)?.exitCode, 0);
      const left = await settledDifference(plane, before, { versions: false, timeoutMs: 60_000 });
      t.same(left, [], 'every namespaced and cluster object is as before the install');
    });
  });

  await t.test(`C: helm ${HELM_VERSIONS[1]} (server-side apply): install, upgrade, uninstall`, async (t) => {
    const bin4 = helmBinary(t, HELM_VERSIONS[1]);
    if (bin4 === undefined) return;
    const helm4 = helmRunner(bin4, join(dir, 'helm4-home'), plane.kubeconfigPath);
    plane.kubectlOk(['delete', 'namespace', NS, '--timeout=120s'], { timeoutMs: 130_000 }); // B's namespace: the chart creates it again
    const before = clusterObjects(plane);
    const runsBefore = runner.runsOf(BOOTSTRAP_JOB).length;
    await helmOk(t, helm4, ['install', 'demomail', CHART, '--namespace', 'default', ...WAIT]);
    t.equal(runner.runsOf(BOOTSTRAP_JOB).length, runsBefore + 1, 'the reconcile ran');
    const bundles = caBundles(plane);
    t.ok(bundles.every((b) => typeof b === 'string' && b.length > 0), 'caBundle written');
    const caPem = secretData(plane, n.caSecret)['tls.crt'];
    const passwords = CREDENTIALS.map((name) => secretData(plane, name)['password']);
    await helmOk(t, helm4, ['upgrade', 'demomail', CHART, '--namespace', 'default', ...WAIT, ...CHANGED]);
    t.equal(runner.runsOf(BOOTSTRAP_JOB).length, runsBefore + 2, 'the reconcile ran on the upgrade');
    t.same(greenmailMemory(plane), '640Mi', 'with the new settings');
    const mwc = plane.kubectlJson<Json>(['get', 'mutatingwebhookconfiguration', n.webhookConfiguration, '--show-managed-fields']);
    t.same((mwc['webhooks'] as Json[]).map((w) => w['timeoutSeconds']), [4, 4], 'helm applied the change');
    t.same(caBundles(plane), bundles, "server-side apply left the bootstrap's caBundle alone");
    t.equal(secretData(plane, n.caSecret)['tls.crt'], caPem, 'same CA');
    t.same(CREDENTIALS.map((name) => secretData(plane, name)['password']), passwords, 'same passwords');
    t.comment(`field managers of the webhook configuration: ${(mwc['metadata']['managedFields'] as Json[]).map((m) => `${m['manager']}/${m['operation']}`).join(', ')}`);
    await helmOk(t, helm4, ['upgrade', 'demomail', CHART, '--namespace', 'default', ...WAIT, ...CHANGED]);
    const steady = clusterObjects(plane);
    await helmOk(t, helm4, ['upgrade', 'demomail', CHART, '--namespace', 'default', ...WAIT, ...CHANGED]);
    const moved = await settledDifference(plane, steady, { versions: true, ignore: transient, timeoutMs: 30_000 });
    t.same(moved, [], 'an upgrade with the same values changes no object');
    await helmOk(t, helm4, ['uninstall', 'demomail', '--namespace', 'default', '--timeout', '3m']);
    const left = await settledDifference(plane, before, { versions: false, timeoutMs: 120_000 });
    t.same(left, [], 'every namespaced and cluster object is as before the install');
  });

  t.comment(`helm e2e: ${((performance.now() - started) / 1000).toFixed(1)} s after the control plane was up; ${runner.runs.length} Job pod(s) run locally`);
});
