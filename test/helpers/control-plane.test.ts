// The pure parts of the control-plane fixture and the local-webhook route (no processes started).
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { apiserverArgs, controllerManagerArgs, etcdArgs, kubeconfigText, lastLines, type Layout } from '../../scripts/lib/control-plane.js';
import { counterTotal, routeToUrlPatch } from '../../scripts/lib/local-webhook.js';

const layout: Layout = { dir: '/tmp/cp', etcdClientPort: 2379, etcdPeerPort: 2380, apiserverPort: 6443 };

t.test('kube-apiserver flags: loopback, one SA key for both roles, RBAC, no admission plugin switched off', async (t) => {
  const args = apiserverArgs(layout);
  for (const flag of [
    '--advertise-address=127.0.0.1',
    '--endpoint-reconciler-type=none',
    '--bind-address=127.0.0.1',
    '--secure-port=6443',
    '--etcd-servers=http://127.0.0.1:2379',
    '--service-account-key-file=/tmp/cp/sa.key',
    '--service-account-signing-key-file=/tmp/cp/sa.key',
    '--authorization-mode=Node,RBAC',
  ]) {
    t.ok(args.includes(flag), flag);
  }
  t.notOk(args.some((a) => a.startsWith('--disable-admission-plugins') || a.startsWith('--enable-admission-plugins')), 'default plugins (MutatingAdmissionWebhook, PodSecurity)');
  t.ok(args.some((a) => a.startsWith('--service-account-issuer=https://')));
});

t.test('etcd and controller-manager flags', async (t) => {
  t.ok(etcdArgs(layout).includes('--listen-client-urls=http://127.0.0.1:2379'));
  t.ok(etcdArgs(layout).includes('--initial-cluster=default=http://127.0.0.1:2380'));
  const kcm = controllerManagerArgs(layout);
  for (const flag of ['--secure-port=0', '--leader-elect=false', '--use-service-account-credentials']) t.ok(kcm.includes(flag), flag);
  const controllers = kcm.find((a) => a.startsWith('--controllers='))?.split('=')[1]?.split(',') ?? [];
  t.match(controllers, ['deployment-controller', 'replicaset-controller', 'serviceaccount-controller']);
  t.ok(controllers.includes('root-ca-certificate-publisher-controller'));
});

t.test('kubeconfig text: client certificate or token, valid YAML', async (t) => {
  const cert = parseYaml(kubeconfigText({ server: 'https://127.0.0.1:1', caPem: 'CA', certPem: 'C', keyPem: 'K', user: 'admin' }));
  t.equal(cert['current-context'], 'demomail-e2e');
  t.same(cert.users[0].user, { 'client-certificate-data': Buffer.from('C').toString('base64'), 'client-key-data': Buffer.from('K').toString('base64') });
  t.equal(cert.clusters[0].cluster['certificate-authority-data'], Buffer.from('CA').toString('base64'));
  const token = parseYaml(kubeconfigText({ server: 'https://127.0.0.1:1', caPem: 'CA', token: 'eyJ.x.y', user: 'sa' }));
  t.same(token.users[0], { name: 'sa', user: { token: 'eyJ.x.y' } });
});

t.test('lastLines', async (t) => {
  const cases: [string, number, string][] = [
    ['a\nb\nc\n', 2, 'b\nc'],
    ['a\nb', 5, 'a\nb'],
    ['', 3, ''],
  ];
  for (const [text, n, want] of cases) t.equal(lastLines(text, n), want, JSON.stringify(text));
});

t.test('counterTotal sums every label set of one counter only', async (t) => {
  const text = [
    '# HELP demomail_webhook_requests_total POST /mutate requests',
    '# TYPE demomail_webhook_requests_total counter',
    'demomail_webhook_requests_total{code="200"} 7',
    'demomail_webhook_requests_total{code="400"} 2',
    'demomail_webhook_requests_total_other 100',
    'demomail_webhook_injected_total 5',
  ].join('\n');
  t.equal(counterTotal(text, 'demomail_webhook_requests_total'), 9);
  t.equal(counterTotal(text, 'demomail_webhook_injected_total'), 5);
  t.equal(counterTotal(text, 'absent_total'), 0);
});

t.test('routeToUrlPatch replaces the clientConfig of every entry', async (t) => {
  t.same(routeToUrlPatch(2, 'https://127.0.0.1:9/mutate', 'PEM'), [
    { op: 'replace', path: '/webhooks/0/clientConfig', value: { url: 'https://127.0.0.1:9/mutate', caBundle: 'UEVN' } },
    { op: 'replace', path: '/webhooks/1/clientConfig', value: { url: 'https://127.0.0.1:9/mutate', caBundle: 'UEVN' } },
  ]);
});
