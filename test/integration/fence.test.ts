// The fence (DESIGN §10, issue 10 point 1). No CNI runs in the test control plane, so the
// NetworkPolicies are checked by an evaluator written here from the Kubernetes NetworkPolicy rules
// (independently of manifests/: it reads only what `kubectl kustomize manifests/` renders), over a
// table of flows, every row asserted. The API server validates the same policies in
// test/e2e/install.test.ts (kubectl apply -k, server-side dry run).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { settingsFrom } from '../../src/config.js';
import { mailserverDeployment } from '../../src/bootstrap/objects.js';
import { repoRoot, resolveBinDir } from '../../scripts/lib/control-plane.js';
import { IN_CI } from '../helpers/control-plane.js';

// ---------------------------------------------------------------------------------------------
// The evaluator (networking.k8s.io/v1 semantics, as the API reference states them).

type Labels = Record<string, string>;
interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}
interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface PolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}
interface Rule {
  from?: Peer[];
  to?: Peer[];
  ports?: PolicyPort[];
}
interface NetworkPolicy {
  metadata: { name: string; namespace?: string };
  spec: { podSelector: LabelSelector; policyTypes?: ('Ingress' | 'Egress')[]; ingress?: Rule[]; egress?: Rule[] };
}
/** A pod (namespace + labels + its namespace's labels) or an address outside the cluster. */
type Endpoint = { pod: { namespace: string; labels: Labels; namespaceLabels: Labels } } | { ip: string };

function selects(selector: LabelSelector, labels: Labels): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const ok = {
      In: has && (e.values ?? []).includes(labels[e.key] as string),
      NotIn: !has || !(e.values ?? []).includes(labels[e.key] as string),
      Exists: has,
      DoesNotExist: !has,
    }[e.operator];
    if (!ok) return false;
  }
  return true;
}

function ipInCidr(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/') as [string, string];
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const block = 2 ** (32 - Number(bits)); // addresses per network: compare the network numbers
  return Math.floor(toInt(ip) / block) === Math.floor(toInt(net) / block);
}

function peerMatches(peer: Peer, policyNamespace: string, other: Endpoint): boolean {
  if (peer.ipBlock) return 'ip' in other && ipInCidr(other.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c) => ipInCidr(other.ip, c));
  if (!('pod' in other)) return false; // pod/namespace selectors never match addresses outside the cluster
  const { pod } = other;
  const namespaceOk = peer.namespaceSelector ? selects(peer.namespaceSelector, pod.namespaceLabels) : pod.namespace === policyNamespace;
  const podOk = peer.podSelector ? selects(peer.podSelector, pod.labels) : true;
  return namespaceOk && podOk;
}

function portMatches(ports: PolicyPort[] | undefined, port: number, protocol: string): boolean {
  if (ports === undefined || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'string') throw new Error(`named port "${p.port}": the evaluator needs the target's container ports; use numbers`);
    return p.endPort === undefined ? p.port === port : port >= p.port && port <= p.endPort;
  });
}

function policyTypes(p: NetworkPolicy): string[] {
  return p.spec.policyTypes ?? ['Ingress', ...(p.spec.egress ? ['Egress'] : [])];
}

/** Is a connection from `source` to `target` (a pod) on port/protocol allowed by the target's ingress policies and the source's egress ones? */
function allowed(policies: NetworkPolicy[], source: Endpoint, target: Endpoint, port: number, protocol = 'TCP'): boolean {
  const direction = (pod: Endpoint, type: 'Ingress' | 'Egress', other: Endpoint): boolean => {
    if (!('pod' in pod)) return true; // outside the cluster: no policy applies
    const selecting = policies.filter((p) => (p.metadata.namespace ?? 'default') === pod.pod.namespace && selects(p.spec.podSelector, pod.pod.labels) && policyTypes(p).includes(type));
    if (selecting.length === 0) return true;
    return selecting.some((p) =>
      ((type === 'Ingress' ? p.spec.ingress : p.spec.egress) ?? []).some((rule) => {
        const peers = type === 'Ingress' ? rule.from : rule.to;
        const peerOk = peers === undefined || peers.length === 0 || peers.some((peer) => peerMatches(peer, pod.pod.namespace, other));
        return peerOk && portMatches(rule.ports, port, protocol);
      }),
    );
  };
  return direction(source, 'Egress', target) && direction(target, 'Ingress', source);
}

// ---------------------------------------------------------------------------------------------

const settings = settingsFrom({});
const mailLabels = ((mailserverDeployment(settings, { tls: 'x', credentials: 'y' }) as any).spec.template.metadata.labels ?? {}) as Labels; // any: the builder's pod template
const nsLabels = (name: string, extra: Labels = {}): Labels => ({ 'kubernetes.io/metadata.name': name, ...extra });
const pod = (namespace: string, labels: Labels = {}, namespaceExtra: Labels = {}): Endpoint => ({ pod: { namespace, labels, namespaceLabels: nsLabels(namespace, namespaceExtra) } });
const mailserver = pod('demomail', mailLabels);
const optedInPod = pod('shop', { app: 'web', 'demomail/inject': 'true' });
const labelledNsPod = pod('civicrm', { app: 'civicrm' }, { 'demomail/injection': 'enabled' });
const optedOutInLabelledNs = pod('civicrm', { app: 'cron', 'demomail/inject': 'false' }, { 'demomail/injection': 'enabled' });
const plainPod = pod('shop', { app: 'web' });
const kubeSystemPod = pod('kube-system', { 'k8s-app': 'kube-dns' });
const demomailPod = pod('demomail', { 'app.kubernetes.io/name': 'demomail-webhook' });
const webhookPod = demomailPod;
const kubeDns = pod('kube-system', { 'k8s-app': 'kube-dns' });

interface Flow {
  what: string;
  from: Endpoint;
  to: Endpoint;
  port: number;
  protocol?: string;
  allowed: boolean;
}
const FLOWS: Flow[] = [
  { what: 'opted-in pod (label) in another namespace → SMTPS 2465', from: optedInPod, to: mailserver, port: 2465, allowed: true },
  { what: 'opted-in pod (label) in another namespace → submission 2587', from: optedInPod, to: mailserver, port: 2587, allowed: true },
  { what: 'opted-in pod (label) in another namespace → IMAPS 3993', from: optedInPod, to: mailserver, port: 3993, allowed: true },
  { what: 'pod in a labelled namespace → SMTP 2525', from: labelledNsPod, to: mailserver, port: 2525, allowed: true },
  { what: 'pod in a labelled namespace → IMAP 3143', from: labelledNsPod, to: mailserver, port: 3143, allowed: true },
  { what: 'pod opted out (inject=false) in a labelled namespace → 2465 (the namespace opted in)', from: optedOutInLabelledNs, to: mailserver, port: 2465, allowed: true },
  { what: 'pod in namespace demomail → 2465', from: demomailPod, to: mailserver, port: 2465, allowed: true },
  { what: 'pod in namespace demomail → viewer 8025', from: demomailPod, to: mailserver, port: 8025, allowed: true },
  { what: 'plain pod in a plain namespace → 2465', from: plainPod, to: mailserver, port: 2465, allowed: false },
  { what: 'plain pod in a plain namespace → 3993', from: plainPod, to: mailserver, port: 3993, allowed: false },
  { what: 'kube-system pod → 3143', from: kubeSystemPod, to: mailserver, port: 3143, allowed: false },
  { what: 'opted-in pod in another namespace → viewer 8025', from: optedInPod, to: mailserver, port: 8025, allowed: false },
  { what: 'pod in a labelled namespace → viewer 8025', from: labelledNsPod, to: mailserver, port: 8025, allowed: false },
  { what: 'opted-in pod → GreenMail API 8080 (loopback only anyway)', from: optedInPod, to: mailserver, port: 8080, allowed: false },
  { what: 'pod in namespace demomail → GreenMail API 8080', from: demomailPod, to: mailserver, port: 8080, allowed: false },
  { what: 'opted-in pod → GreenMail SMTP 3025 (loopback only anyway)', from: optedInPod, to: mailserver, port: 3025, allowed: false },
  { what: 'opted-in pod → SMTP 2525 over UDP', from: optedInPod, to: mailserver, port: 2525, protocol: 'UDP', allowed: false },
  { what: 'opted-in pod → an unlisted port 9999', from: optedInPod, to: mailserver, port: 9999, allowed: false },
  { what: 'an address outside the cluster → 2465', from: { ip: '203.0.113.5' }, to: mailserver, port: 2465, allowed: false },
  { what: 'mail server → the internet (93.184.216.34:25)', from: mailserver, to: { ip: '93.184.216.34' }, port: 25, allowed: false },
  { what: 'mail server → the internet (443)', from: mailserver, to: { ip: '93.184.216.34' }, port: 443, allowed: false },
  { what: 'mail server → cluster DNS 53/UDP (it resolves nothing)', from: mailserver, to: kubeDns, port: 53, protocol: 'UDP', allowed: false },
  { what: 'mail server → cluster DNS 53/TCP', from: mailserver, to: kubeDns, port: 53, allowed: false },
  { what: 'mail server → a pod in its own namespace', from: mailserver, to: webhookPod, port: 10250, allowed: false },
  { what: 'not fenced: kube-system → the webhook pod 10250 (the fence selects the mail server only)', from: kubeSystemPod, to: webhookPod, port: 10250, allowed: true },
  { what: 'not fenced: plain pod → plain pod', from: plainPod, to: pod('shop', { app: 'db' }), port: 5432, allowed: true },
];

t.test('the fence, evaluated over a table of flows', async (t) => {
  const resolved = await resolveBinDir({ build: IN_CI });
  if (resolved.binDir === undefined) {
    if (IN_CI) t.fail(`CI=true and kubectl is missing: ${resolved.reason}`);
    else t.plan(0, `kubectl not available (${resolved.reason}): SKIPPED`);
    return;
  }
  const rendered = spawnSync(join(resolved.binDir, 'kubectl'), ['kustomize', join(repoRoot(), 'manifests')], { encoding: 'utf8' });
  t.equal(rendered.status, 0, rendered.stderr);
  const policies = parseAllDocuments(rendered.stdout)
    .map((d) => d.toJS() as { kind?: string })
    .filter((o): o is NetworkPolicy & { kind: string } => o?.kind === 'NetworkPolicy');
  t.same(policies.map((p) => p.metadata.name).sort(), ['demomail-mailserver-deny-egress', 'demomail-mailserver-ingress']);
  t.ok(policies.every((p) => selects(p.spec.podSelector, mailLabels)), 'both select the mail-server pod as the bootstrap labels it');

  const rows: string[] = [];
  for (const flow of FLOWS) {
    const verdict = allowed(policies, flow.from, flow.to, flow.port, flow.protocol);
    t.equal(verdict, flow.allowed, `${flow.what}: ${flow.allowed ? 'allowed' : 'denied'}`);
    rows.push(`${verdict ? 'ALLOW' : 'DENY '} ${flow.what}`);
  }
  t.comment(`fence: ${FLOWS.length} flows, ${FLOWS.filter((f) => f.allowed).length} allowed, ${FLOWS.filter((f) => !f.allowed).length} denied\n  ${rows.join('\n  ')}`);
});

t.test('the evaluator itself: selector, peer and port rules', async (t) => {
  t.ok(selects({}, {}), 'empty selector selects all');
  t.ok(selects({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }] }, { a: '1' }));
  t.notOk(selects({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, { a: '1' }));
  t.ok(selects({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, {}));
  t.ok(portMatches([{ port: 2000, endPort: 2100 }], 2050, 'TCP'));
  t.notOk(portMatches([{ port: 2000 }], 2000, 'UDP'));
  t.ok(ipInCidr('10.1.2.3', '10.0.0.0/8'));
  t.notOk(ipInCidr('11.1.2.3', '10.0.0.0/8'));
  t.ok(ipInCidr('1.2.3.4', '0.0.0.0/0'));
  // podSelector alone = same namespace only; both selectors = AND.
  const p: NetworkPolicy = { metadata: { name: 'x', namespace: 'a' }, spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] } };
  t.ok(allowed([p], pod('a'), pod('a'), 1));
  t.notOk(allowed([p], pod('b'), pod('a'), 1));
  t.ok(allowed([p], pod('b'), pod('b'), 1), 'pods no policy selects are open');
});
