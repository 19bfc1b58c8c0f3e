// `kubectl apply -k manifests/` on a real control plane (etcd + kube-apiserver + kube-controller-manager):
// the base applies, re-applies unchanged, its workloads pass Pod Security `restricted` (the controllers
// really create their pods), the RBAC grants the bootstrap exactly the named objects of src/config.ts,
// and the webhook configuration is stored as DESIGN §3 says. No webhook process here: see injection.test.ts.
import { waitFor } from '../../scripts/lib/wait.js';
import { join } from 'node:path';
import t from 'tap';
import { DEFAULTS, settingsFrom } from '../../src/config.js';
import { repoRoot, type ControlPlane } from '../../scripts/lib/control-plane.js';
import { controlPlaneFor } from '../helpers/control-plane.js';

type Json = Record<string, unknown>;
const manifests = join(repoRoot(), 'manifests');
const names = settingsFrom({}).names;
const NS = DEFAULTS['NAMESPACE'] ?? 'demomail';
const BOOTSTRAP_SA = `system:serviceaccount:${NS}:${names.bootstrapServiceAccount}`;


function podsWithLabel(plane: ControlPlane, selector: string): Json[] {
  return plane.kubectlJson<{ items: Json[] }>(['get', 'pods', '-n', NS, '-l', selector]).items;
}

/**
 * kind/ns/name → a change marker for every object the base creates (they all carry part-of=demomail):
 * metadata.generation where the kind has one (controllers keep updating Deployment and Job status,
 * which bumps resourceVersion but not generation), resourceVersion otherwise.
 */
function resourceVersions(plane: ControlPlane): Record<string, string> {
  const kinds = 'namespaces,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,configmaps,deployments,services,poddisruptionbudgets,mutatingwebhookconfigurations,networkpolicies,jobs,cronjobs';
  const list = plane.kubectlJson<{ items: { kind: string; metadata: { name: string; namespace?: string; resourceVersion: string; generation?: number } }[] }>([
    'get', kinds, '-A', '-l', 'app.kubernetes.io/part-of=demomail',
  ]);
  return Object.fromEntries(list.items.map((o) => [`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, String(o.metadata.generation ?? o.metadata.resourceVersion)]));
}

function canI(plane: ControlPlane, as: string, verb: string, resource: string, namespace?: string): boolean {
  const args = ['auth', 'can-i', verb, resource, `--as=${as}`, ...(namespace ? ['-n', namespace] : [])];
  const r = plane.kubectl(args);
  // `can-i` exits 0 for yes and 1 for no; anything else is a broken question.
  if (r.code !== 0 && r.code !== 1) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim() === 'yes';
}

await t.test('kubectl apply -k manifests/ on a real control plane', async (t) => {
  const plane = await controlPlaneFor(t);
  if (!plane) return;

  await t.test('server-side dry run of the base is accepted', async (t) => {
    const r = plane.kubectl(['apply', '-k', manifests, '--dry-run=server']);
    // Before the first apply the namespace does not exist (a dry run does not create it), so the
    // namespaced objects are refused for that reason only; everything else must be valid.
    const errors = r.stderr.trim().split('\n').filter((l) => l !== '');
    t.same(errors.filter((l) => !/namespaces "demomail" not found/.test(l)), [], 'no error but the missing namespace');
    t.match(r.stdout, /mutatingwebhookconfiguration\.admissionregistration\.k8s\.io\/demomail created \(server dry run\)/);
  });

  await t.test('first apply creates every object, without Pod Security warnings', async (t) => {
    const r = plane.kubectl(['apply', '-k', manifests]);
    t.equal(r.code, 0, `apply succeeds: ${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    t.equal(lines.length, 21, 'twenty-one objects');
    t.ok(lines.every((l) => l.endsWith(' created')), r.stdout);
    t.notMatch(r.stderr, /PodSecurity|violate/i, 'workload templates are restricted-compliant (PSA warn on namespace demomail)');
  });

  await t.test('a second apply changes nothing', async (t) => {
    const diff = plane.kubectl(['diff', '-k', manifests]);
    t.equal(diff.code, 0, `kubectl diff -k finds no difference: ${diff.stdout}${diff.stderr}`);
    const before = resourceVersions(plane);
    const r = plane.kubectl(['apply', '-k', manifests]);
    t.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    t.equal(lines.length, 21);
    // kubectl's client-side apply always re-sends a PDB's selector (patchStrategy "replace") and so says
    // "configured" although the server changes nothing; the resourceVersions below prove it.
    const reported = lines.filter((l) => !l.endsWith(' unchanged') && !/^poddisruptionbudget\.policy\/\S+ configured$/.test(l));
    t.same(reported, [], 'every object reported unchanged (the PDB aside)');
    t.same(resourceVersions(plane), before, 'no object changed (generation / resourceVersion)');
    const dry = plane.kubectl(['apply', '-k', manifests, '--dry-run=server']);
    t.equal(dry.code, 0, `server-side dry run over the installed base is clean: ${dry.stderr}`);
  });

  await t.test('ConfigMap demomail-config holds every setting with its default', async (t) => {
    const cm = plane.kubectlJson<{ data: Record<string, string> }>(['get', 'configmap', names.config, '-n', NS]);
    t.same(cm.data, { ...DEFAULTS }, 'same keys and values as src/config.ts DEFAULTS');
  });

  await t.test('namespace enforces Pod Security restricted', async (t) => {
    const ns = plane.kubectlJson<{ metadata: { labels: Record<string, string> } }>(['get', 'namespace', NS]);
    t.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  await t.test('controllers create the webhook and bootstrap pods under restricted PSA', async (t) => {
    const webhookPods = await waitFor('2 webhook pods', () => {
      const pods = podsWithLabel(plane, 'app.kubernetes.io/name=demomail-webhook');
      return pods.length === 2 ? pods : undefined;
    });
    t.equal(webhookPods.length, 2, 'the ReplicaSet made both replicas (PSA would have refused a non-compliant template)');
    const bootstrapPods = await waitFor('the bootstrap Job pod', () => {
      const pods = podsWithLabel(plane, 'app.kubernetes.io/component=bootstrap');
      return pods.length > 0 ? pods : undefined;
    });
    const pod = bootstrapPods[0] as { spec: { serviceAccountName: string; containers: { args: string[] }[] } };
    t.equal(pod.spec.serviceAccountName, names.bootstrapServiceAccount);
    t.same(pod.spec.containers[0]?.args, ['bootstrap']);
    // No pod in our namespace reaches the webhook: the configuration still points at a Service with no
    // caBundle and no endpoints, so a call would have failed these creations (failurePolicy Fail).
    const events = plane.kubectlOk(['get', 'events', '-n', NS, '--field-selector', 'reason=FailedCreate', '-o', 'name']);
    t.equal(events.trim(), '', 'no FailedCreate events in demomail');
  });

  await t.test('the webhook configuration is stored as DESIGN §3 says', async (t) => {
    const mwc = plane.kubectlJson<{ webhooks: Json[] }>(['get', 'mutatingwebhookconfiguration', names.webhookConfiguration]);
    t.equal(mwc.webhooks.length, 2);
    for (const w of mwc.webhooks as {
      name: string;
      failurePolicy: string;
      sideEffects: string;
      timeoutSeconds: number;
      reinvocationPolicy: string;
      matchPolicy: string;
      admissionReviewVersions: string[];
      rules: Json[];
      clientConfig: { service: Json; caBundle?: string; url?: string };
      namespaceSelector: { matchExpressions: Json[] };
    }[]) {
      t.equal(w.failurePolicy, 'Fail', w.name);
      t.equal(w.sideEffects, 'None');
      t.ok(w.timeoutSeconds <= 5);
      t.equal(w.reinvocationPolicy, 'IfNeeded');
      t.equal(w.matchPolicy, 'Equivalent');
      t.same(w.admissionReviewVersions, ['v1']);
      t.same(w.rules, [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }]);
      t.same(w.clientConfig.service, { namespace: NS, name: names.webhookService, path: '/mutate', port: 443 });
      t.notOk(w.clientConfig.caBundle, 'no caBundle in git: the bootstrap writes it');
      t.same(w.namespaceSelector.matchExpressions, [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NS, 'kube-system'] }]);
    }
  });

  await t.test('TokenRequest works for the bootstrap ServiceAccount', async (t) => {
    const token = plane.kubectlOk(['create', 'token', names.bootstrapServiceAccount, '-n', NS]).trim();
    t.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/, 'a signed JWT');
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string };
    t.equal(claims.sub, BOOTSTRAP_SA);
  });

  await t.test('bootstrap RBAC: exactly the named objects of src/config.ts', async (t) => {
    const inOurNamespace: [string, string[]][] = [
      ['secrets', [names.caSecret, names.mailserverTlsSecret, names.smtpSecret, names.imapSecret, names.imap2Secret, names.webhookTlsSecret]],
      ['configmaps', [names.caConfigMap, names.mailserverConfig]],
      ['services', [names.smtpService, names.imapService, names.uiService]],
      ['deployments.apps', [names.mailserverDeployment]],
    ];
    for (const [resource, list] of inOurNamespace) {
      for (const name of list) {
        for (const verb of ['get', 'create', 'patch']) {
          t.ok(canI(plane, BOOTSTRAP_SA, verb, `${resource}/${name}`, NS), `${verb} ${resource}/${name} in ${NS}`);
        }
        t.notOk(canI(plane, BOOTSTRAP_SA, 'delete', `${resource}/${name}`, NS), `no delete ${resource}/${name}`);
      }
      t.notOk(canI(plane, BOOTSTRAP_SA, 'get', `${resource}/someone-elses`, NS), `no get on other ${resource}`);
      t.notOk(canI(plane, BOOTSTRAP_SA, 'list', resource, NS), `no list ${resource}`);
    }
    // GreenMail's API Service of earlier releases: read and deleted by the reconcile, nothing else.
    for (const verb of ['get', 'delete']) t.ok(canI(plane, BOOTSTRAP_SA, verb, `services/${names.apiService}`, NS), `${verb} services/${names.apiService}`);
    t.notOk(canI(plane, BOOTSTRAP_SA, 'patch', `services/${names.apiService}`, NS), `no patch services/${names.apiService}`);
    const copies: [string, string][] = [
      ['secrets', names.smtpSecret],
      ['secrets', names.imapSecret],
      ['secrets', names.imap2Secret],
      ['configmaps', names.mailserverConfig],
    ];
    for (const [resource, name] of copies) {
      t.ok(canI(plane, BOOTSTRAP_SA, 'patch', `${resource}/${name}`, 'any-app-namespace'), `copy ${resource}/${name} into other namespaces`);
    }
    t.notOk(canI(plane, BOOTSTRAP_SA, 'get', `secrets/${names.caSecret}`, 'any-app-namespace'), 'the CA key stays in our namespace');
    for (const verb of ['patch', 'create', 'update']) {
      t.notOk(canI(plane, BOOTSTRAP_SA, verb, `configmaps/${names.config}`, NS), `no ${verb} on its own settings (${names.config}: IMAGE is injected into pods)`);
    }
    t.ok(canI(plane, BOOTSTRAP_SA, 'list', 'namespaces'), 'list namespaces (to find the opted-in ones)');
    t.ok(canI(plane, BOOTSTRAP_SA, 'patch', `mutatingwebhookconfigurations/${names.webhookConfiguration}`), 'patch our webhook configuration');
    t.notOk(canI(plane, BOOTSTRAP_SA, 'patch', 'mutatingwebhookconfigurations/someone-elses'), 'no other webhook configuration');
    t.notOk(canI(plane, BOOTSTRAP_SA, 'create', 'pods', NS), 'no pods');
    for (const sa of ['demomail-webhook', 'demomail-mailserver']) {
      t.notOk(canI(plane, `system:serviceaccount:${NS}:${sa}`, 'get', 'secrets', NS), `${sa} has no API access`);
    }
  });

  await t.test('server-side apply as the bootstrap creates a named object (patch + create with resourceNames)', async (t) => {
    const secret = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: names.smtpSecret, namespace: NS },
      type: 'kubernetes.io/basic-auth',
      stringData: { username: 'smtp@demomail.test', password: 'not-a-real-password-e2e-only' },
    });
    const as = `--as=${BOOTSTRAP_SA}`;
    const created = plane.kubectl([as, 'apply', '--server-side', '--field-manager=demomail', '-f', '-'], { input: secret });
    t.equal(created.code, 0, created.stderr);
    const again = plane.kubectl([as, 'apply', '--server-side', '--field-manager=demomail', '-f', '-'], { input: secret });
    t.equal(again.code, 0, again.stderr);
    const other = plane.kubectl([as, 'apply', '--server-side', '--field-manager=demomail', '-f', '-'], { input: secret.replace(names.smtpSecret, 'not-ours') });
    t.not(other.code, 0, 'another name is forbidden');
    t.match(other.stderr, /forbidden/i);
  });
});
