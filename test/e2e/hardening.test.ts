// Issue 10 on a real API server, as the demomail-bootstrap ServiceAccount (its own token):
// - the ValidatingAdmissionPolicies of manifests/ let that token change only the webhook caBundle and
//   create only its own Secrets;
// - N overlapping bootstrap processes on an empty namespace end with one CA and one password per account;
// - a CA without Name Constraints (older release) is kept with a warning, `demomail rotate-ca` replaces it;
// - hostile labelled namespaces (a tenant's demomail-smtp of another type, an immutable Secret, a quota
//   forbidding Secrets, a namespace deleted mid-run) do not stop the copies to the others.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { settingsFrom } from '../../src/config.js';
import { CopyFailures } from '../../src/bootstrap/apply.js';
import { httpTransport, loadKubeConfig, type KubeTransport } from '../../src/bootstrap/kube.js';
import { runBootstrap } from '../../src/bootstrap/main.js';
import { createCertificateAuthority, nameConstraints, splitPemCertificates } from '../../src/pki/certificates.js';
import { type ControlPlane } from '../../scripts/lib/control-plane.js';
import { installBase, runCli } from '../helpers/bootstrap-process.js';
import { controlPlaneFor } from '../helpers/control-plane.js';
import { ensureBuilt } from '../helpers/greenmail.js';

type Json = Record<string, any>; // any: kubectl -o json output, read field by field
const settings = settingsFrom({});
const NS = settings.namespace;
const n = settings.names;
const MATERIAL = [n.caSecret, n.mailserverTlsSecret, n.webhookTlsSecret, n.smtpSecret, n.imapSecret, n.imap2Secret];
const ACCOUNTS = [n.smtpSecret, n.imapSecret, n.imap2Secret];
/**
 * Overlapping runs per round: 10, as the issue asks. More rounds (a soak, not for CI):
 * DEMOMAIL_RACE_ROUNDS=10,10,10 npx tap test/e2e/hardening.test.ts
 */
const ROUNDS = (process.env['DEMOMAIL_RACE_ROUNDS'] ?? '10').split(',').map(Number).filter((x) => x > 0);
/** 10 processes starting at once on 2 shared cores: a run can take minutes of wall time. */
const RACE_RUN_TIMEOUT_MS = 400_000;
const b64 = (s: string) => Buffer.from(s).toString('base64');

const secretData = (plane: ControlPlane, name: string, namespace = NS): Record<string, string> =>
  Object.fromEntries(Object.entries((plane.kubectlJson(['get', 'secret', name, '-n', namespace]) as Json)['data'] ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString('utf8')]));

/** kubectl with the bootstrap ServiceAccount's kubeconfig (not the admin one). */
function kubectlAs(plane: ControlPlane, kubeconfig: string, args: string[], input?: string) {
  const r = spawnSync(join(plane.binDir, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], { input: input ?? '', encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

await t.test('hardening on a real API server, as the bootstrap ServiceAccount', async (t) => {
  const plane = await controlPlaneFor(t, { controllerManager: false });
  if (!plane) return;
  const cli = ensureBuilt();
  const { kubeconfig } = installBase(t, plane, NS, n.bootstrapServiceAccount);

  await t.test('the bootstrap token may change only caBundle of MutatingWebhookConfiguration demomail', async (t) => {
    for (const name of ['demomail-bootstrap-cabundle-only', 'demomail-bootstrap-secret-names']) {
      const policy = plane.kubectlJson(['get', 'validatingadmissionpolicy', name]) as Json;
      t.equal(policy['metadata']['namespace'], undefined, `${name} is cluster-scoped`);
      t.same(policy['status']?.['typeChecking']?.['expressionWarnings'] ?? [], [], `${name}: CEL type-checks without warnings`);
    }
    const rulesPatch = JSON.stringify([{ op: 'replace', path: '/webhooks/0/rules/0/operations', value: ['CREATE', 'UPDATE'] }]);
    // Policies take effect once the API server's informer has them: poll (bounded).
    let denied = { code: 0 as number | null, out: '' };
    for (const until = Date.now() + 30_000; Date.now() < until; ) {
      denied = kubectlAs(plane, kubeconfig, ['patch', 'mutatingwebhookconfiguration', n.webhookConfiguration, '--type', 'json', '-p', rulesPatch, '--dry-run=server']);
      if (denied.code !== 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    t.not(denied.code, 0, 'rules: refused');
    t.match(denied.out, /ValidatingAdmissionPolicy 'demomail-bootstrap-cabundle-only'.*denied request: the demomail bootstrap may change only webhooks\[\*\]\.clientConfig\.caBundle/);
    const attempts: [string, unknown[]][] = [
      ['objectSelector', [{ op: 'replace', path: '/webhooks/0/objectSelector', value: {} }]],
      ['namespaceSelector', [{ op: 'replace', path: '/webhooks/1/namespaceSelector', value: {} }]],
      ['clientConfig.service → url', [{ op: 'remove', path: '/webhooks/0/clientConfig/service' }, { op: 'add', path: '/webhooks/0/clientConfig/url', value: 'https://attacker.example/mutate' }]],
      ['clientConfig.service.name', [{ op: 'replace', path: '/webhooks/0/clientConfig/service/name', value: 'other' }]],
      ['failurePolicy', [{ op: 'replace', path: '/webhooks/1/failurePolicy', value: 'Ignore' }]],
      ['an entry removed', [{ op: 'remove', path: '/webhooks/1' }]],
      ['a label', [{ op: 'add', path: '/metadata/labels/x', value: 'y' }]],
    ];
    for (const [what, patch] of attempts) {
      const r = kubectlAs(plane, kubeconfig, ['patch', 'mutatingwebhookconfiguration', n.webhookConfiguration, '--type', 'json', '-p', JSON.stringify(patch)]);
      t.not(r.code, 0, `${what}: refused`);
      t.match(r.out, /demomail-bootstrap-cabundle-only/, `${what}: by the policy`);
    }
    const bundle = b64(createCertificateAuthority({ commonName: 'e2e caBundle' }).certPem);
    const caPatch = [0, 1].map((i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle }));
    const ok = kubectlAs(plane, kubeconfig, ['patch', 'mutatingwebhookconfiguration', n.webhookConfiguration, '--type', 'json', '-p', JSON.stringify(caPatch)]);
    t.equal(ok.code, 0, `caBundle on both entries: allowed (${ok.out.trim()})`);
    const admin = plane.kubectl(['patch', 'mutatingwebhookconfiguration', n.webhookConfiguration, '--type', 'json', '-p', rulesPatch, '--dry-run=server']);
    t.equal(admin.code, 0, 'an administrator is not bound by the policy');

    const foreign = kubectlAs(plane, kubeconfig, ['create', 'secret', 'generic', 'not-ours', '-n', NS, '--from-literal=a=b']);
    t.not(foreign.code, 0, 'POST create of a Secret with another name: refused');
    t.match(foreign.out, /demomail-bootstrap-secret-names.*may create only its own Secrets.*not not-ours of type Opaque/);
    const saToken = { apiVersion: 'v1', kind: 'Secret', metadata: { name: n.smtpSecret, namespace: NS, annotations: { 'kubernetes.io/service-account.name': 'demomail-webhook' } }, type: 'kubernetes.io/service-account-token' };
    const tokenSecret = kubectlAs(plane, kubeconfig, ['create', '-f', '-'], JSON.stringify(saToken));
    t.not(tokenSecret.code, 0, 'a service-account token Secret under one of our names: refused');
    t.comment(`policy figures: ${attempts.length + 1} field changes refused, caBundle update allowed, 2 foreign Secret creations refused`);
  });

  await t.test(`${ROUNDS.join(', then ')} overlapping bootstrap processes on an empty namespace: one CA, one password per account`, async (t) => {
    for (const [index, concurrent] of ROUNDS.entries()) {
      const round = index + 1;
      for (const name of MATERIAL) plane.kubectlOk(['delete', 'secret', name, '-n', NS, '--ignore-not-found']);
      for (const name of ACCOUNTS) plane.kubectlOk(['delete', 'secret', name, '-n', 'shop', '--ignore-not-found']);
      const started = performance.now();
      const runs = await Promise.all(Array.from({ length: concurrent }, () => runCli(cli, 'bootstrap', kubeconfig, {}, RACE_RUN_TIMEOUT_MS)));
      const seconds = (performance.now() - started) / 1000;
      const replans = runs.reduce((sum, r) => sum + (r.stdout.match(/reading again and re-planning/g)?.length ?? 0), 0);
      t.same(runs.map((r) => r.code), Array(concurrent).fill(0), `round ${round}: every run exits 0${runs.map((r) => r.stderr).join('')}`);
      const created = runs.map((r) => (r.stdout.match(/: (created|updated)(?: |$)/gm) ?? []).length);

      const ca = secretData(plane, n.caSecret);
      const caPem = ca['tls.crt'] ?? '';
      t.ok(nameConstraints(caPem), 'the CA carries Name Constraints');
      t.equal((plane.kubectlJson(['get', 'configmap', n.caConfigMap, '-n', NS]) as Json)['data']['ca.crt'], caPem, 'ConfigMap demomail-ca: that CA only');
      t.ok(new X509Certificate(secretData(plane, n.mailserverTlsSecret)['tls.crt'] ?? '').verify(new X509Certificate(caPem).publicKey), 'mail-server certificate signed by it');
      const webhookCa = secretData(plane, n.webhookTlsSecret)['ca.crt'] ?? '';
      const mwc = plane.kubectlJson(['get', 'mutatingwebhookconfiguration', n.webhookConfiguration]) as Json;
      for (const w of mwc['webhooks']) t.equal(Buffer.from(w.clientConfig.caBundle, 'base64').toString('utf8'), webhookCa, `caBundle of ${w.name} = the stored webhook CA`);
      for (const name of ACCOUNTS) t.same(secretData(plane, name, 'shop'), secretData(plane, name), `shop/${name} carries the stored password`);
      // A Secret written again after its creation would carry a second manager entry (an Apply).
      for (const name of MATERIAL) {
        const managers = ((plane.kubectlJson(['get', 'secret', name, '-n', NS, '--show-managed-fields']) as Json)['metadata']['managedFields'] as Json[]).map((m) => `${m['manager']}/${m['operation']}`);
        t.same(managers, ['demomail/Update'], `${name}: created once (POST), never overwritten`);
      }
      const after = await runCli(cli, 'bootstrap', kubeconfig);
      t.equal(after.code, 0, after.stderr);
      t.match(after.stdout, /; 0 write\(s\)/, 'a follow-up run finds nothing to change: every run agreed');
      t.comment(
        `round ${round}: ${concurrent} overlapping runs in ${seconds.toFixed(1)} s, ${replans} re-plan(s) after AlreadyExists/Conflict, ` +
          `writes per run ${created.join('/')}, distinct CAs 1, distinct passwords per account 1, follow-up writes 0`,
      );
    }
  });

  await t.test('a CA without Name Constraints is kept with a warning; rotate-ca replaces it; EXTRA_SANS outside is refused', async (t) => {
    const passwords = ACCOUNTS.map((name) => secretData(plane, name)['password']);
    const legacy = createCertificateAuthority({ commonName: 'demomail mail CA' });
    plane.kubectlOk(['patch', 'secret', n.caSecret, '-n', NS, '--type', 'merge', '-p', JSON.stringify({ data: { 'tls.crt': b64(legacy.certPem), 'tls.key': b64(legacy.keyPem), 'ca.crt': b64(legacy.certPem) } })]);
    const kept = await runCli(cli, 'bootstrap', kubeconfig);
    t.equal(kept.code, 0, kept.stderr);
    t.match(kept.stdout, /WARNING Secret demomail\/demomail-ca: the mail CA has no Name Constraints .*Run `demomail rotate-ca`/);
    t.equal(secretData(plane, n.caSecret)['tls.crt'], legacy.certPem, 'kept: no surprise rollover');

    const rotated = await runCli(cli, 'rotate-ca', kubeconfig);
    t.equal(rotated.code, 0, rotated.stderr);
    t.match(rotated.stdout, /CA renewed — replacement requested \(demomail rotate-ca\)/);
    t.match(rotated.stdout, /Pods injected before now trust only the old CA: restart them\.\n.*labelled demomail\/injection=enabled: shop/);
    const newCa = secretData(plane, n.caSecret)['tls.crt'] ?? '';
    t.ok(nameConstraints(newCa), 'the new CA is constrained');
    t.same(splitPemCertificates((plane.kubectlJson(['get', 'configmap', n.caConfigMap, '-n', NS]) as Json)['data']['ca.crt']), [newCa, legacy.certPem], 'bundle: new + old while the old is valid');
    t.ok(new X509Certificate(secretData(plane, n.mailserverTlsSecret)['tls.crt'] ?? '').verify(new X509Certificate(newCa).publicKey), 'leaf re-issued by the new CA');
    t.same(ACCOUNTS.map((name) => secretData(plane, name)['password']), passwords, 'passwords unchanged');

    const refused = await runCli(cli, 'bootstrap', kubeconfig, { DEMOMAIL_EXTRA_SANS: 'mail.example.org' });
    t.equal(refused.code, 1);
    t.match(refused.stderr, /Name Constraints do not permit mail\.example\.org .*run `demomail rotate-ca`/);
    t.equal(secretData(plane, n.caSecret)['tls.crt'], newCa, 'nothing replaced');
  });

  await t.test('hostile labelled namespaces do not stop the copies to the others', async (t) => {
    const tenants = ['a-wrong-type', 'b-immutable', 'c-quota', 'd-deleted', 'z-fine'];
    for (const ns of tenants) plane.kubectlOk(['create', 'namespace', ns]);
    plane.kubectlOk(['create', 'secret', 'generic', n.smtpSecret, '-n', 'a-wrong-type', '--from-literal=token=tenant-owned']);
    plane.kubectlOk(['create', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: n.imapSecret, namespace: 'b-immutable' }, type: 'kubernetes.io/basic-auth', immutable: true, data: { username: b64('tenant'), password: b64('tenant') } }),
    });
    plane.kubectlOk(['create', 'quota', 'no-secrets', '-n', 'c-quota', '--hard=secrets=0']);
    // No kube-controller-manager here: fill in the status its quota controller would write.
    plane.kubectlOk(['patch', 'resourcequota', 'no-secrets', '-n', 'c-quota', '--subresource=status', '--type', 'merge', '-p', JSON.stringify({ status: { hard: { secrets: '0' }, used: { secrets: '0' } } })]);
    for (const ns of tenants) plane.kubectlOk(['label', 'namespace', ns, 'demomail/injection=enabled']);

    // In-process run whose transport deletes d-deleted right after the namespace list: "deleted mid-run".
    const inner = httpTransport(loadKubeConfig(kubeconfig));
    let deleted = false;
    const transport: KubeTransport = async (method, path, body, contentType) => {
      const response = await inner(method, path, body, contentType);
      if (!deleted && method === 'GET' && path.startsWith('/api/v1/namespaces?')) {
        deleted = true;
        plane.kubectlOk(['delete', 'namespace', 'd-deleted', '--wait=false']);
      }
      return response;
    };
    const lines: string[] = [];
    const err = await runBootstrap({ settings, transport, log: (l) => lines.push(l) }).catch((e: unknown) => e);
    t.ok(err instanceof CopyFailures, `fails at the end: ${(err as Error).message}`);
    const failed = (err as CopyFailures).failures.map((f) => f.namespace);
    t.same(failed, ['a-wrong-type', 'b-immutable', 'c-quota', 'd-deleted'], 'each bad namespace reported');
    t.match((err as Error).message, /a-wrong-type \(Secret a-wrong-type\/demomail-smtp: patch failed with HTTP 422 Invalid.*type/);
    t.match((err as Error).message, /b-immutable \(Secret b-immutable\/demomail-imap: patch failed with HTTP 422 Invalid/);
    t.match((err as Error).message, /c-quota \(Secret c-quota\/demomail-smtp: patch refused by the namespace \(HTTP 403\): .*quota/);
    t.match((err as Error).message, /d-deleted \(Secret d-deleted\/demomail-smtp: patch refused by the namespace \(HTTP 403\): .*being terminated/);
    for (const name of ACCOUNTS) t.same(secretData(plane, name, 'z-fine'), secretData(plane, name), `z-fine/${name}: copied although four namespaces before it failed`);
    t.equal(plane.kubectl(['get', 'configmap', n.mailserverConfig, '-n', 'z-fine']).code, 0, 'z-fine/config-mailserver copied');
    t.same(secretData(plane, n.smtpSecret, 'a-wrong-type'), { token: 'tenant-owned' }, "the tenant's own Secret is untouched");
    t.same(secretData(plane, n.imapSecret, 'b-immutable')['password'], 'tenant');

    // The CronJob's view: the process exits non-zero and names every failed namespace.
    const run = await runCli(cli, 'bootstrap', kubeconfig);
    t.equal(run.code, 1, 'exit 1: the CronJob shows the run as failed');
    t.match(run.stderr, /copies failed in 3 of 5 labelled namespace\(s\), the others and namespace demomail are up to date: a-wrong-type .*; b-immutable .*; c-quota /);
    t.match(run.stdout, /FAILED namespace a-wrong-type: /);
    t.comment(`hostile tenants: ${failed.length} namespaces failed and were reported (${failed.join(', ')}); z-fine received all copies; process exit ${run.code}`);
  });
});
