// charts/demomail with the real helm v3 (no cluster): `helm lint --strict`, `helm template` with default
// values renders exactly the objects of `kubectl kustomize manifests/` (Helm's own labels and annotations
// aside, plus the uninstall-time cleanup hook), the schema refuses typos and wrong types naming the key,
// and no template generates secret material or writes caBundle. The install/upgrade/uninstall story on
// a real control plane is test/e2e/helm.test.ts.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { DEFAULTS } from '../src/config.js';
import { repoRoot, resolveBinDir } from '../scripts/lib/control-plane.js';
import { IN_CI } from './helpers/control-plane.js';
import { CHART, HELM_VERSIONS, helmBinary, helmRunner, objectKey, parseObjects, withoutHelmMetadata, type K8sObject } from './helpers/helm.js';

const root = repoRoot();
for (const version of HELM_VERSIONS) {
  await t.test(`helm ${version}`, async (t) => {
    const bin = helmBinary(t, version);
    if (bin === undefined) return;
    const home = mkdtempSync(join(tmpdir(), 'demomail-helm-'));
    t.teardown(() => rmSync(home, { recursive: true, force: true }));
    const helm = helmRunner(bin, home);
    const template = async (args: string[] = []) => {
      const r = await helm(['template', 'demomail', CHART, ...args]);
      if (r.code !== 0) throw new Error(`helm template ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return parseObjects(r.stdout);
    };
    const valuesFile = (name: string, text: string) => {
      const file = join(home, name);
      writeFileSync(file, text);
      return file;
    };
    const find = (objects: K8sObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);

    t.test('Chart.yaml follows package.json', async (t) => {
      const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { apiVersion: string; version: string; appVersion: string };
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
      t.equal(chart.apiVersion, 'v2');
      t.equal(chart.appVersion, pkg.version, 'appVersion = package version');
      t.equal(chart.version, pkg.version);
    });

    t.test('helm lint --strict', async (t) => {
      for (const args of [[], ['--set-string', 'mail.deployMailserver=0'], ['--set', 'namespace.create=false', '--namespace', 'demomail']]) {
        const r = await helm(['lint', '--strict', CHART, ...args]);
        t.equal(r.code, 0, `lint ${args.join(' ')}: ${r.stdout}${r.stderr}`);
        t.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      }
    });

    t.test('helm template with default values = kubectl kustomize manifests/ (Helm metadata aside)', async (t) => {
      const resolved = await resolveBinDir({ build: IN_CI });
      if (resolved.binDir === undefined) {
        if (IN_CI) t.fail(`CI=true and kubectl is missing: ${resolved.reason}`);
        else t.skip(`kubectl (control-plane binaries) unavailable: ${resolved.reason}`, () => {});
        return;
      }
      const { execFileSync } = await import('node:child_process');
      const kustomized = parseObjects(execFileSync(join(resolved.binDir, 'kubectl'), ['kustomize', join(root, 'manifests')], { encoding: 'utf8' }));
      const rendered = await template();
      const cleanupHooks = rendered.filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'pre-delete');
      t.same(cleanupHooks.map(objectKey).sort(), [
        'ClusterRole//demomail-cleanup',
        'ClusterRoleBinding//demomail-cleanup',
        'Job/demomail/demomail-cleanup',
        'Role/demomail/demomail-cleanup',
        'RoleBinding/demomail/demomail-cleanup',
        'ServiceAccount/demomail/demomail-cleanup',
      ], 'the only chart-only objects: the uninstall cleanup hook and its RBAC');
      // The two intended differences: the reconcile Job's name carries a hash of its inputs and of the
      // release revision (templates/bootstrap.yaml), and the webhook pods carry a checksum of the settings.
      const comparable = (o: K8sObject): K8sObject => {
        const copy = withoutHelmMetadata(o);
        if (copy.kind === 'Job' && /^demomail-bootstrap-[0-9a-f]{8}$/.test(copy.metadata.name)) copy.metadata.name = 'demomail-bootstrap';
        const template = (copy['spec'] as { template?: { metadata?: { annotations?: Record<string, string> } } } | undefined)?.template?.metadata;
        if (copy.kind === 'Deployment' && template?.annotations) {
          t.match(template.annotations['demomail/config-checksum'], /^[0-9a-f]{16}$/, 'webhook pods carry the settings checksum');
          delete template.annotations['demomail/config-checksum'];
          if (Object.keys(template.annotations).length === 0) delete template.annotations;
        }
        // CEL is whitespace-insensitive, and `kubectl kustomize` prints a folded scalar's line break before
        // a more-indented line as a blank line (go-yaml's emitter), which reads back as "\n\n".
        if (copy.kind === 'ValidatingAdmissionPolicy') {
          for (const v of ((copy['spec'] as { validations?: { expression: string }[] }).validations ?? [])) v.expression = v.expression.replace(/\s+/g, ' ');
        }
        return copy;
      };
      const chartObjects = new Map(rendered.filter((o) => !cleanupHooks.includes(o)).map((o) => comparable(o)).map((o) => [objectKey(o), o]));
      const baseObjects = new Map(kustomized.map((o) => comparable(o)).map((o) => [objectKey(o), o]));
      t.same([...chartObjects.keys()].sort(), [...baseObjects.keys()].sort(), 'same objects (kind/namespace/name)');
      for (const [key, base] of baseObjects) {
        const chart = chartObjects.get(key);
        if (chart) t.same(chart, base, `${key} renders as in manifests/`);
      }
      for (const o of rendered.filter((o) => !cleanupHooks.includes(o))) {
        t.equal(o.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm', `${objectKey(o)} carries Helm's labels`);
      }
    });

    t.test('the reconcile Job: a plain release object named after its inputs', async (t) => {
      const jobName = (objects: K8sObject[]) => objects.find((o) => o.kind === 'Job' && o.metadata.name.startsWith('demomail-bootstrap-'))?.metadata.name;
      const base = await template();
      const job = base.find((o) => o.kind === 'Job' && o.metadata.name.startsWith('demomail-bootstrap-'));
      t.same(Object.keys(job?.metadata.annotations ?? {}).filter((k) => k.startsWith('helm.sh/hook')), [], 'not a hook: --wait and Argo CD health never wait for it to start');
      t.equal(jobName(await template()), jobName(base), 'same values, same name (Argo CD: nothing OutOfSync)');
      t.not(jobName(await template(['--set', 'mail.domain=other.test'])), jobName(base), 'a changed setting: a new Job');
      t.not(jobName(await template(['--set', 'image.tag=9.9.9'])), jobName(base), 'a changed pod template: a new Job, never an immutable-field error');
      const checksum = (objects: K8sObject[]) => (find(objects, 'Deployment', 'demomail-webhook') as unknown as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template.metadata.annotations['demomail/config-checksum'];
      t.not(checksum(await template(['--set', 'mail.domain=other.test'])), checksum(base), 'a changed setting rolls the webhook pods');
    });

    t.test('no template generates keys, certificates or passwords, looks objects up, or writes caBundle', async (t) => {
      const files = readdirSync(join(CHART, 'templates'));
      const forbidden = /\b(genCA|genCAWithKey|genSelfSignedCert|genSelfSignedCertWithKey|genSignedCert|genSignedCertWithKey|genPrivateKey|derivePassword|randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|uuidv4|lookup|now)\b/;
      for (const file of files) {
        const text = readFileSync(join(CHART, 'templates', file), 'utf8').replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
        const actions = text.match(/\{\{[\s\S]*?\}\}/g) ?? [];
        t.same(actions.filter((a) => forbidden.test(a)), [], `${file}: no generating or lookup function`);
        if (file.endsWith('.yaml')) t.notMatch(text.replace(/^\s*#.*$/gm, ''), /caBundle\s*:/, `${file}: no caBundle key`);
      }
      for (const args of [[], ['--set-string', 'mail.deployMailserver=0']]) {
        const rendered = await template(args);
        t.notOk(rendered.some((o) => o.kind === 'Secret'), 'no Secret rendered');
        const mwc = find(rendered, 'MutatingWebhookConfiguration', 'demomail') as { webhooks: { clientConfig: Record<string, unknown> }[] } | undefined;
        t.ok(mwc?.webhooks.every((w) => !('caBundle' in w.clientConfig)), 'no caBundle key at all (not even empty)');
        t.same(await template(args), rendered, 'two renders are identical (nothing random)');
      }
    });

    t.test('the schema refuses unknown keys and wrong types, naming the key', async (t) => {
      const cases: [string, string, RegExp][] = [
        ['typo-nested.yaml', 'mail:\n  deployMailServer: "1"\n', /deployMailServer/],
        ['typo-top.yaml', 'webhooks:\n  replicaCount: 3\n', /webhooks/],
        ['typo-deep.yaml', 'webhook:\n  resources:\n    limit:\n      cpu: 1\n', /limit/],
        ['wrong-type.yaml', 'webhook:\n  replicaCount: two\n', /replicaCount/],
        ['number-not-string.yaml', 'mail:\n  deployMailserver: 1\n', /deployMailserver/],
        ['bad-policy.yaml', 'webhook:\n  failurePolicy: Sometimes\n', /failurePolicy/],
        ['bad-domain.yaml', 'mail:\n  domain: Not A Domain\n', /domain/],
      ];
      for (const [name, text, key] of cases) {
        const r = await helm(['template', 'demomail', CHART, '-f', valuesFile(name, text)]);
        t.not(r.code, 0, `${name} refused`);
        t.match(r.stderr, /values don't meet the specifications of the schema/, `${name}: a schema error`);
        t.match(r.stderr, key, `${name}: the message names the key`);
      }
      const ok = await helm(['template', 'demomail', CHART, '-f', valuesFile('ok.yaml', 'global: {}\nmail:\n  deployMailserver: "0"\n')]);
      t.equal(ok.code, 0, `a parent chart's global block is accepted: ${ok.stderr}`);
    });

    t.test('mail.deployMailserver "0": setting passed on, webhook and PKI objects unchanged', async (t) => {
      const on = await template();
      const off = await template(['--set-string', 'mail.deployMailserver=0']);
      t.equal((find(off, 'ConfigMap', 'demomail-config') as { data: Record<string, string> } | undefined)?.data['DEPLOY_MAILSERVER'], '0');
      const keys = (objects: K8sObject[]) => objects.map(objectKey).map((k) => k.replace(/^Job\/demomail\/demomail-bootstrap-[0-9a-f]{8}$/, 'Job/demomail/demomail-bootstrap'));
      t.same(keys(off), keys(on), 'the same chart objects: the bootstrap decides about the mail server');
    });

    t.test('values reach the objects', async (t) => {
      const rendered = await template(['-f', valuesFile('custom.yaml', [
        'image: {registry: registry.example, repository: team/demomail, tag: "9.9.9", digest: "sha256:' + 'a'.repeat(64) + '", pullPolicy: Always}',
        'imagePullSecrets: [pull-me]',
        'mail: {domain: mail.example, users: {smtp: out, imap: in, imap2: in2}, extraSans: [mail.example.org, 10.0.0.5]}',
        'webhook:',
        '  replicaCount: 3',
        '  podDisruptionBudget: {maxUnavailable: 1}',
        '  timeoutSeconds: 3',
        '  namespaceSelector: {matchLabels: {team: shop}}',
        '  objectSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}',
        '  priorityClassName: system-cluster-critical',
        '  tolerations: [{key: dedicated, operator: Exists, effect: NoSchedule}]',
        'commonLabels: {team: platform}',
        'commonAnnotations: {owner: platform}',
        'networkPolicy: {enabled: false}',
        'extraObjects:',
        '  - apiVersion: v1',
        '    kind: ConfigMap',
        '    metadata: {name: "{{ .Release.Name }}-extra", namespace: demomail}',
        '',
      ].join('\n'))]);
      const image = `registry.example/team/demomail:9.9.9@sha256:${'a'.repeat(64)}`;
      const config = find(rendered, 'ConfigMap', 'demomail-config') as { data: Record<string, string> } & K8sObject;
      t.equal(config.data['IMAGE'], image);
      t.equal(config.data['IMAGE_PULL_POLICY'], 'Always');
      t.equal(config.data['MAIL_DOMAIN'], 'mail.example');
      t.equal(config.data['EXTRA_SANS'], 'mail.example.org,10.0.0.5');
      t.same([config.data['SMTP_USER'], config.data['IMAP_USER'], config.data['IMAP_USER2']], ['out', 'in', 'in2']);
      type Pod = { spec: { containers: { image: string }[]; imagePullSecrets?: unknown; priorityClassName?: string; tolerations?: unknown } };
      const deployment = find(rendered, 'Deployment', 'demomail-webhook') as unknown as { spec: { replicas: number; template: Pod } };
      t.equal(deployment.spec.replicas, 3);
      t.equal(deployment.spec.template.spec.containers[0]?.image, image);
      t.same(deployment.spec.template.spec.imagePullSecrets, [{ name: 'pull-me' }]);
      t.equal(deployment.spec.template.spec.priorityClassName, 'system-cluster-critical');
      t.same(deployment.spec.template.spec.tolerations, [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }]);
      t.same((find(rendered, 'PodDisruptionBudget', 'demomail-webhook') as unknown as { spec: unknown }).spec, { maxUnavailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': 'demomail-webhook' } } });
      const mwc = find(rendered, 'MutatingWebhookConfiguration', 'demomail') as unknown as { webhooks: { timeoutSeconds: number; namespaceSelector: unknown; objectSelector: unknown }[] };
      t.same(mwc.webhooks.map((w) => w.timeoutSeconds), [3, 3]);
      t.same(mwc.webhooks[0]?.namespaceSelector, { matchLabels: { team: 'shop' }, matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['demomail', 'kube-system'] }] });
      t.same(mwc.webhooks[1]?.namespaceSelector, { matchLabels: { 'demomail/injection': 'enabled', team: 'shop' }, matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['demomail', 'kube-system'] }] });
      t.same(mwc.webhooks[0]?.objectSelector, { matchLabels: { 'demomail/inject': 'true' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] });
      t.same(mwc.webhooks[1]?.objectSelector, { matchExpressions: [{ key: 'demomail/inject', operator: 'DoesNotExist' }, { key: 'tier', operator: 'NotIn', values: ['db'] }] });
      t.notOk(rendered.some((o) => o.kind === 'NetworkPolicy'), 'networkPolicy.enabled=false');
      t.ok(find(rendered, 'ConfigMap', 'demomail-extra'), 'extraObjects rendered through tpl');
      for (const o of rendered.filter((o) => o.metadata.name !== 'demomail-extra')) {
        t.equal(o.metadata.labels?.['team'], 'platform', `${objectKey(o)}: commonLabels`);
        t.equal(o.metadata.annotations?.['owner'], 'platform', `${objectKey(o)}: commonAnnotations`);
      }
    });

    t.test('gateway and viewer settings; the viewer Ingress never goes without basic auth', async (t) => {
      const rendered = await template(['-f', valuesFile('gateway.yaml', [
        'gateway: {simulateDomain: sim.example, bounceMailbox: bounces@demomail.test, verpLocalpart: "imap+", store: {maxMessages: 100, maxBytes: 64Mi}, messageSizeLimit: 10Mi, maxRecipients: 50, memoryLimit: 1Gi}',
        '',
      ].join('\n'))]);
      const data = (find(rendered, 'ConfigMap', 'demomail-config') as { data: Record<string, string> } | undefined)?.data ?? {};
      t.same(
        [data['SIMULATE_DOMAIN'], data['BOUNCE_MAILBOX'], data['VERP_LOCALPART'], data['STORE_MAX_MESSAGES'], data['STORE_MAX_BYTES'], data['MESSAGE_SIZE_LIMIT'], data['MAX_RECIPIENTS'], data['GATEWAY_MEMORY_LIMIT']],
        ['sim.example', 'bounces@demomail.test', 'imap+', '100', '64Mi', '10Mi', '50', '1Gi'],
      );
      t.notOk((await template()).some((o) => o.kind === 'Ingress'), 'no Ingress by default');
      const noAuth = await helm(['template', 'demomail', CHART, '--set', 'viewer.ingress.enabled=true', '--set', 'viewer.ingress.host=mail.example']);
      t.not(noAuth.code, 0, 'an Ingress without basic auth is refused');
      t.match(noAuth.stderr, /viewer\.ingress\.enabled=true needs viewer\.ingress\.basicAuth\.existingSecret/);
      const ingressArgs = ['--set', 'viewer.ingress.enabled=true', '--set', 'viewer.ingress.host=mail.example', '--set', 'viewer.ingress.className=nginx', '--set', 'viewer.ingress.basicAuth.existingSecret=viewer-auth'];
      const fenced = await helm(['template', 'demomail', CHART, ...ingressArgs]);
      t.not(fenced.code, 0, 'with the fence on, the Ingress needs the controller as a NetworkPolicy peer');
      t.match(fenced.stderr, /needs viewer\.ingress\.allowFrom/);
      const controller = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } };
      const withAuth = await template([...ingressArgs, '--set-json', `viewer.ingress.allowFrom=${JSON.stringify([controller])}`]);
      const fence = find(withAuth, 'NetworkPolicy', 'demomail-mailserver-ingress') as unknown as { spec: { ingress: { from: unknown[]; ports: { port: number }[] }[] } };
      const viewerRule = fence.spec.ingress.find((r) => r.ports.some((p) => p.port === 8025));
      t.same(viewerRule?.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'demomail' } } }, controller], 'the viewer port admits the ingress controller');
      const ingress = find(withAuth, 'Ingress', 'demomail-ui') as unknown as { spec: { ingressClassName: string; rules: { host: string; http: { paths: { backend: unknown }[] } }[] } };
      t.equal(ingress.spec.ingressClassName, 'nginx');
      t.equal(ingress.spec.rules[0]?.host, 'mail.example');
      t.same(ingress.spec.rules[0]?.http.paths[0]?.backend, { service: { name: 'demomail-ui', port: { number: 8025 } } });
      t.equal((find(withAuth, 'ConfigMap', 'demomail-config') as { data: Record<string, string> } | undefined)?.data['UI_AUTH_SECRET'], 'viewer-auth', 'the gateway reads that Secret');
    });

    t.test('a renamed object: settings, RBAC and the cleanup follow names.*', async (t) => {
      const rendered = await template(['--set', 'names.smtpSecret=mail-out', '--set', 'names.webhookConfiguration=mail-webhook']);
      const data = (find(rendered, 'ConfigMap', 'demomail-config') as { data: Record<string, string> } | undefined)?.data ?? {};
      t.equal(data['SMTP_SECRET'], 'mail-out');
      type Role = { rules: { resources: string[]; resourceNames?: string[] }[] };
      const names = (kind: string, name: string, resource: string) =>
        ((find(rendered, kind, name) as unknown as Role | undefined)?.rules ?? []).filter((r) => r.resources.includes(resource)).flatMap((r) => r.resourceNames ?? []);
      for (const [kind, name] of [['Role', 'demomail-bootstrap'], ['ClusterRole', 'demomail-bootstrap'], ['Role', 'demomail-cleanup'], ['ClusterRole', 'demomail-cleanup']] as const) {
        t.ok(names(kind, name, 'secrets').includes('mail-out'), `${kind} ${name} names the renamed Secret`);
        t.notOk(names(kind, name, 'secrets').includes('demomail-smtp'), `${kind} ${name} no longer names the old one`);
      }
      t.same(names('ClusterRole', 'demomail-bootstrap', 'mutatingwebhookconfigurations'), ['mail-webhook']);
      t.ok(find(rendered, 'MutatingWebhookConfiguration', 'mail-webhook'));
    });

    t.test('ConfigMap keys are exactly src/config.ts DEFAULTS', async (t) => {
      const config = find(await template(), 'ConfigMap', 'demomail-config') as { data: Record<string, string> } | undefined;
      const manifestKeys = Object.keys((parseYaml(readFileSync(join(root, 'manifests', 'config.yaml'), 'utf8')) as { data: Record<string, string> }).data).sort();
      t.same(Object.keys(config?.data ?? {}).sort(), manifestKeys, 'same keys as manifests/config.yaml');
      for (const key of manifestKeys) t.equal(config?.data[key], DEFAULTS[key], `${key} default`);
    });

    t.test('namespace.create: the release cannot live in the namespace the chart creates', async (t) => {
      const r = await helm(['template', 'demomail', CHART, '--namespace', 'demomail']);
      t.not(r.code, 0);
      t.match(r.stderr, /namespace\.create=true: the chart creates Namespace "demomail" itself.*set namespace\.create=false/);
      const kept = await template(['--namespace', 'demomail', '--set', 'namespace.create=false']);
      t.notOk(kept.some((o) => o.kind === 'Namespace'), 'no Namespace object with namespace.create=false');
      const other = await template(['--set', 'namespace.name=mail-demo']);
      t.ok(other.filter((o) => o.metadata.namespace !== undefined).every((o) => o.metadata.namespace === 'mail-demo'), 'every namespaced object follows namespace.name');
      t.equal((find(other, 'ConfigMap', 'demomail-config') as { data: Record<string, string> } | undefined)?.data['NAMESPACE'], 'mail-demo');
    });

  });
}
