import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { mailserverSans, serviceDnsNames, settingsFrom, type Settings } from '../config.js';
import { createCertificateAuthority, createServerCertificate, nameConstraints, splitPemCertificates, subjectAltNames } from '../pki/certificates.js';
import { caBundlePatch, managedDifference } from './compare.js';
import { ENV, containerEnvironment, parseGreenmailUsers, shellWords } from './greenmail.js';
import { keystoreProblem } from './keystore.js';
import { keyOf, objectKey, type KubeObject } from './objects.js';
import { DESIRED_HASH_ANNOTATION } from './compare.js';
import { desiredObjects, randomAlphanumericPassword, type CurrentState, type Plan } from './plan.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const DAY = 24 * 60 * 60 * 1000;
const EMPTY: CurrentState = { objects: {}, labelledNamespaces: [] };
/** GreenMail's own user syntax as the issue quotes it (newer GreenMail versions). */
const GREENMAIL_USER_REGEX = /^([^:]+):(?:(.+)@([^@]+)|(.+))$/;

const plan = (settings: Settings, state: CurrentState, now = NOW): Plan =>
  desiredObjects(settings, state, { now, randomPassword: () => randomAlphanumericPassword() });

/**
 * What the API server hands back after applying `objects`: our fields plus metadata and defaults it
 * adds. The planner and the comparison must look through those.
 */
function live(objects: KubeObject[], labelledNamespaces: string[] = []): CurrentState {
  const out: Record<string, KubeObject> = {};
  objects.forEach((desired, i) => {
    // any: the fixture edits nested fields of shapes objects.ts built; typing each would add nothing.
    const obj = structuredClone(desired) as KubeObject & Record<string, any>;
    obj.metadata = { ...obj.metadata, resourceVersion: String(100 + i), uid: `uid-${i}`, creationTimestamp: '2026-01-01T00:00:00Z', managedFields: [{ manager: 'demomail', operation: 'Apply' }] };
    if (obj.kind === 'Deployment') {
      obj.spec.progressDeadlineSeconds = 600;
      obj.spec.template.spec.dnsPolicy = 'ClusterFirst';
      obj.spec.template.spec.containers[0].terminationMessagePath = '/dev/termination-log';
      obj.status = { replicas: 1 };
    }
    if (obj.kind === 'Service') {
      obj.spec.clusterIP = '10.0.0.10';
      obj.spec.sessionAffinity = 'None';
    }
    out[keyOf(desired)] = obj;
  });
  return { objects: out, labelledNamespaces };
}

function find(p: Plan, kind: string, name: string, namespace = 'demomail'): KubeObject {
  const obj = p.objects.find((o) => keyOf(o) === objectKey(kind, namespace, name));
  if (!obj) throw new Error(`plan has no ${kind} ${namespace}/${name}`);
  return obj;
}
const data = (obj: KubeObject, key: string): string => Buffer.from(((obj['data'] as Record<string, string>)[key]) ?? '', 'base64').toString('utf8');
const decision = (p: Plan, object: string, item: string) => p.decisions.find((d) => d.object === object && d.item === item);

const settings = settingsFrom({});
const first = plan(settings, EMPTY);
const passwordsOf = (p: Plan) => ['demomail-smtp', 'demomail-imap', 'demomail-imap2'].map((name) => data(find(p, 'Secret', name), 'password'));

t.test('empty cluster: every object is created', async (t) => {
  const names = first.objects.map((o) => `${o.kind}/${o.metadata.name}`);
  t.same(names, [
    'Secret/demomail-ca',
    'ConfigMap/demomail-ca',
    'Secret/demomail-mailserver-tls',
    'Secret/demomail-webhook-tls',
    'Secret/demomail-smtp',
    'Secret/demomail-imap',
    'Secret/demomail-imap2',
    'ConfigMap/config-mailserver',
    'Deployment/demomail-mailserver',
    'Service/smtpdemo',
    'Service/imapdemo',
    'Service/demomail-ui',
  ]);
  t.same(first.obsolete, [], 'no Service demomail-api to delete on an empty cluster');
  t.ok(first.decisions.every((d) => d.action === 'created'), 'every decision is "created"');
  t.equal(first.decisions.length, 7);
  const ca = find(first, 'Secret', 'demomail-ca');
  t.same(Object.keys(ca['data'] as object).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
  t.same(Object.keys(find(first, 'ConfigMap', 'demomail-ca')['data'] as object), ['ca.crt'], 'the ConfigMap holds the public CA only');
  t.equal((find(first, 'ConfigMap', 'demomail-ca')['data'] as Record<string, string>)['ca.crt'], data(ca, 'tls.crt'));
  const tls = find(first, 'Secret', 'demomail-mailserver-tls');
  t.same(Object.keys(tls['data'] as object).sort(), ['ca.crt', 'keystore-password', 'keystore.p12', 'tls.crt', 'tls.key']);
  const sans = subjectAltNames(data(tls, 'tls.crt'));
  t.same([...sans.dns, ...sans.ips].sort(), [...mailserverSans(settings)].sort(), 'mail cert SANs = mailserverSans(settings)');
  t.ok(new X509Certificate(data(tls, 'tls.crt')).verify(new X509Certificate(data(ca, 'tls.crt')).publicKey), 'mail cert signed by the mail CA');
  t.equal(keystoreProblem(Buffer.from((tls['data'] as Record<string, string>)['keystore.p12'] as string, 'base64'), data(tls, 'keystore-password'), data(tls, 'tls.crt'), data(tls, 'tls.key'), data(ca, 'tls.crt')), undefined, 'keystore opens and holds the pair');

  const webhookTls = find(first, 'Secret', 'demomail-webhook-tls');
  t.same(Object.keys(webhookTls['data'] as object).sort(), ['ca.crt', 'tls.crt', 'tls.key'], 'no CA key: the webhook CA is one-time');
  const wsans = subjectAltNames(data(webhookTls, 'tls.crt'));
  t.same(wsans.dns.sort(), serviceDnsNames(settings, 'demomail-webhook').sort());
  const webhookCa = new X509Certificate(data(webhookTls, 'ca.crt'));
  t.ok(webhookCa.ca, 'ca.crt is a CA');
  t.ok(new X509Certificate(data(webhookTls, 'tls.crt')).verify(webhookCa.publicKey), 'webhook cert signed by the webhook CA');
  t.not(data(webhookTls, 'ca.crt'), data(ca, 'tls.crt'), 'the webhook CA is not the mail CA');
  t.equal(first.webhookCaBundle, data(webhookTls, 'ca.crt'));
  t.equal(first.mailCaBundle, data(ca, 'tls.crt'));

  for (const [name, user] of [['demomail-smtp', 'smtp'], ['demomail-imap', 'imap'], ['demomail-imap2', 'imap2']] as const) {
    const s = find(first, 'Secret', name);
    t.equal(s['type'], 'kubernetes.io/basic-auth');
    t.equal(data(s, 'username'), `${user}@demomail.test`);
    t.match(data(s, 'password'), /^[A-Za-z0-9]{24,}$/, `${name}: 24+ alphanumeric characters`);
  }
  t.equal(new Set(passwordsOf(first)).size, 3, 'three different passwords');
  t.same(find(first, 'ConfigMap', 'config-mailserver')['data'], {
    SMTP_USER_SECRET: 'demomail-smtp',
    SMTP_PASSWD_SECRET: 'demomail-smtp',
    IMAP_USER_SECRET: 'demomail-imap',
    IMAP_PASSWD_SECRET: 'demomail-imap',
    IMAP_USER2_SECRET: 'demomail-imap2',
  });
  for (const obj of first.objects) t.ok(obj.metadata.annotations?.[DESIRED_HASH_ANNOTATION], `${keyOf(obj)} carries the desired hash`);
});

t.test('Services: ports as the seed expects them', async (t) => {
  const ports = (name: string) => ((find(first, 'Service', name)['spec'] as any).ports as { port: number; targetPort: number }[]).map((p) => `${p.port}->${p.targetPort}`); // any: test reads known JSON
  t.same(ports('smtpdemo'), ['25->2525', '465->2465', '587->2587'], 'SMTP is the gateway');
  t.same(ports('imapdemo'), ['143->3143', '993->3993'], 'IMAP is GreenMail');
  t.same(ports('demomail-ui'), ['8025->8025'], 'the viewer');
  t.equal((find(first, 'Service', 'demomail-ui')['spec'] as any).type, 'ClusterIP'); // any: known JSON
});

t.test('Deployment: GreenMail options, probes, security, resources', async (t) => {
  const deployment = find(first, 'Deployment', 'demomail-mailserver');
  const serialized = JSON.stringify(deployment);
  const tls = find(first, 'Secret', 'demomail-mailserver-tls');
  for (const secret of [...passwordsOf(first), data(tls, 'keystore-password')]) {
    t.notOk(serialized.includes(secret), 'no credential literal in the Deployment');
  }
  const spec = (deployment['spec'] as any).template.spec; // any: known JSON shape built by objects.ts
  const container = spec.containers[0];
  t.equal(container.image, 'greenmail/standalone:2.1.7');
  const envNames = container.env.map((e: { name: string }) => e.name);
  const optsIndex = envNames.indexOf(ENV.greenmailOpts);
  for (const ref of [ENV.smtpPassword, ENV.imapPassword, ENV.imap2Password, ENV.keystorePassword]) {
    t.ok(envNames.indexOf(ref) >= 0 && envNames.indexOf(ref) < optsIndex, `${ref} is declared before GREENMAIL_OPTS (kubelet expands only earlier ones)`);
  }
  const opts: string = container.env[optsIndex].value;
  t.notOk(opts.includes('auth.disabled'), 'GREENMAIL_OPTS is overridden whole, without -Dgreenmail.auth.disabled');
  for (const word of shellWords(opts)) t.match(word, /^-D[a-z.]+(=\S+)?$/, `"${word.replace(/\$\([A-Z0-9_]+\)/g, '$(…)')}" is one shell word`);
  t.notOk(opts.includes('greenmail.setup.'), 'per-protocol options only (with setup.test.* GreenMail sees "smtp" twice)');
  t.ok(shellWords(opts).includes('-Dgreenmail.smtp.hostname=127.0.0.1'), "GreenMail's SMTP on loopback: only the gateway delivers");
  t.ok(shellWords(opts).includes('-Dgreenmail.api.hostname=127.0.0.1'), 'its REST API on loopback: no login, reads and purges every mailbox');
  t.ok(shellWords(opts).includes('-Dgreenmail.imaps.hostname=0.0.0.0'));
  t.notOk(opts.includes('greenmail.smtps') || opts.includes('greenmail.pop3'), 'no SMTPS, no POP3');
  t.ok(shellWords(opts).includes('-Dgreenmail.users.login=email'));
  t.ok(shellWords(opts).includes('-Dgreenmail.tls.keystore.file=/tls/keystore.p12'));
  t.notOk(opts.includes('greenmail.verbose'), 'no verbose protocol log (it would print AUTH exchanges)');
  const javaOpts: string = container.env.find((e: { name: string }) => e.name === ENV.javaOpts).value;
  t.ok(shellWords(javaOpts).includes('-Xmx256m'), '-Xmx = MAILSERVER_HEAP');

  // Expand exactly as the kubelet would, with the rendered Secrets.
  const secrets = Object.fromEntries(first.objects.filter((o) => o.kind === 'Secret').map((o) => [o.metadata.name, o['data'] as Record<string, string>]));
  const env = containerEnvironment(container.env, { secrets });
  const expanded = shellWords(env[ENV.greenmailOpts]);
  t.notOk(expanded.join(' ').includes('$('), 'every $(VAR) resolved');
  t.ok(expanded.includes(`-Dgreenmail.tls.keystore.password=${data(tls, 'keystore-password')}`));
  const usersOpt = expanded.find((w) => w.startsWith('-Dgreenmail.users='))?.slice('-Dgreenmail.users='.length) ?? '';
  const entries = usersOpt.split(',');
  t.equal(entries.length, 3);
  const expected = [['smtp', passwordsOf(first)[0]], ['imap', passwordsOf(first)[1]], ['imap2', passwordsOf(first)[2]]];
  entries.forEach((entry, i) => {
    const m = GREENMAIL_USER_REGEX.exec(entry);
    t.ok(m, `user ${i} matches GreenMail's user regex`);
    t.same([m?.[1], m?.[2], m?.[3]], [expected[i]?.[0], expected[i]?.[1], 'demomail.test']);
  });
  t.same(parseGreenmailUsers(usersOpt), expected.map(([login, password]) => ({ login, password, domain: 'demomail.test' })), 'and GreenMail 2.1.7 [:@] split agrees');

  // GreenMail's API is on loopback: the kubelet cannot reach it; a TCP check of IMAP instead.
  t.same(container.readinessProbe.tcpSocket, { port: 'imap' });
  t.same(container.livenessProbe.tcpSocket, { port: 'imap' });
  t.same(container.ports.map((p: { containerPort: number }) => p.containerPort), [3143, 3993], 'only IMAP/IMAPS declared');
  t.same(container.resources, { requests: { cpu: '50m', memory: '512Mi' }, limits: { memory: '512Mi' } });
  t.equal(spec.securityContext.runAsNonRoot, true);
  t.type(spec.securityContext.runAsUser, 'number');
  t.same(container.securityContext.capabilities, { drop: ['ALL'] });
  t.equal(container.securityContext.readOnlyRootFilesystem, true);
  t.equal(container.securityContext.allowPrivilegeEscalation, false);
  t.ok(container.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/tmp'), 'writable /tmp for the JVM');
  t.same(container.volumeMounts.find((m: { name: string }) => m.name === 'keystore'), { name: 'keystore', mountPath: '/tls', readOnly: true });
  t.equal(spec.serviceAccountName, 'demomail-mailserver');
  t.equal(spec.automountServiceAccountToken, false);
  t.equal((deployment['spec'] as any).template.metadata.labels['app.kubernetes.io/name'], 'demomail-mailserver'); // any: known JSON
  t.match((deployment['spec'] as any).template.metadata.annotations['demomail/tls-checksum'], /^[0-9a-f]{64}$/); // any: known JSON
  t.notOk(container.command.join(' ').includes('run_greenmail.sh'), 'the image script that echoes the expanded options is not used');

  const gateway = spec.containers.find((c: { name: string }) => c.name === 'gateway');
  t.equal(gateway.image, settings.image, 'our image');
  t.same(gateway.args, ['gateway', '--cert', '/tls/tls.crt', '--key', '/tls/tls.key', '--ui-auth-dir', '/ui-auth']);
  t.same(gateway.envFrom, [{ configMapRef: { name: 'demomail-config' }, prefix: 'DEMOMAIL_' }]);
  t.same(
    gateway.env.filter((e: { valueFrom?: unknown }) => e.valueFrom).map((e: { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }) => `${e.name}=${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`),
    [
      'DEMOMAIL_SMTP_USERNAME=demomail-smtp/username',
      'DEMOMAIL_SMTP_PASSWORD=demomail-smtp/password',
      'DEMOMAIL_IMAP_USERNAME=demomail-imap/username',
      'DEMOMAIL_IMAP_PASSWORD=demomail-imap/password',
      'DEMOMAIL_IMAP2_USERNAME=demomail-imap2/username',
      'DEMOMAIL_IMAP2_PASSWORD=demomail-imap2/password',
    ],
    'credentials only as secretKeyRef',
  );
  t.same(
    gateway.env.filter((e: { valueFrom?: unknown }) => !e.valueFrom),
    [
      { name: 'MALLOC_ARENA_MAX', value: '2' },
      { name: 'MALLOC_MMAP_THRESHOLD_', value: '32768' },
    ],
    'glibc malloc settings of the gateway process, plain values',
  );
  t.same(gateway.ports.map((p: { name: string; containerPort: number }) => `${p.name}:${p.containerPort}`), ['smtp:2525', 'submission:2587', 'smtps:2465', 'http:8025']);
  t.same(gateway.readinessProbe.httpGet, { path: '/readyz', port: 'http', scheme: 'HTTP' });
  t.same(gateway.livenessProbe.httpGet, { path: '/livez', port: 'http', scheme: 'HTTP' });
  t.same(gateway.resources, { requests: { cpu: '50m', memory: '768Mi' }, limits: { memory: '768Mi' } }, 'memory = GATEWAY_MEMORY_LIMIT');
  t.same(gateway.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } }, 'restricted, no UID of its own');
  t.same(gateway.volumeMounts, [
    { name: 'gateway-tls', mountPath: '/tls', readOnly: true },
    { name: 'ui-auth', mountPath: '/ui-auth', readOnly: true },
  ], 'directories, not subPath: the kubelet ..data swap reaches the gateway');
  t.same(spec.volumes.find((v: { name: string }) => v.name === 'gateway-tls').secret.items.map((i: { key: string }) => i.key), ['tls.crt', 'tls.key'], 'not the keystore or its password');
  t.equal(spec.volumes.find((v: { name: string }) => v.name === 'ui-auth').secret.optional, true);
});

t.test('everything present and valid: nothing changes', async (t) => {
  const state = live(first.objects);
  const second = plan(settings, state, new Date(NOW.getTime() + 30 * DAY));
  t.ok(second.decisions.every((d) => d.action === 'reused'), `every decision is "reused": ${JSON.stringify(second.decisions.filter((d) => d.action !== 'reused'))}`);
  for (const obj of second.objects) t.equal(managedDifference(obj, state.objects[keyOf(obj)]), undefined, `${keyOf(obj)} unchanged`);
  const mwc: KubeObject = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'demomail' },
    webhooks: [{ name: 'a.demomail.io', clientConfig: { caBundle: Buffer.from(second.webhookCaBundle).toString('base64') } }],
  };
  t.equal(caBundlePatch(mwc, second.webhookCaBundle), undefined, 'caBundle already current: no patch');
});

t.test('mail-server certificate Secret deleted: recreated by the same CA, passwords kept', async (t) => {
  const state = live(first.objects);
  delete state.objects[objectKey('Secret', 'demomail', 'demomail-mailserver-tls')];
  const next = plan(settings, state);
  t.equal(decision(next, 'Secret demomail/demomail-ca', 'CA')?.action, 'reused');
  t.equal(decision(next, 'Secret demomail/demomail-mailserver-tls', 'certificate')?.action, 'created');
  const caPem = data(find(first, 'Secret', 'demomail-ca'), 'tls.crt');
  t.equal(data(find(next, 'Secret', 'demomail-ca'), 'tls.crt'), caPem, 'same CA');
  const leaf = new X509Certificate(data(find(next, 'Secret', 'demomail-mailserver-tls'), 'tls.crt'));
  t.ok(leaf.verify(new X509Certificate(caPem).publicKey), 'new leaf signed by the existing CA');
  t.same(passwordsOf(next), passwordsOf(first), 'passwords unchanged');
  t.not(
    (find(next, 'Deployment', 'demomail-mailserver')['spec'] as any).template.metadata.annotations['demomail/tls-checksum'], // any: known JSON
    (find(first, 'Deployment', 'demomail-mailserver')['spec'] as any).template.metadata.annotations['demomail/tls-checksum'], // any: known JSON
    'the pod template changes, so GreenMail restarts with the new keystore',
  );
  t.equal(managedDifference(find(next, 'Secret', 'demomail-smtp'), state.objects[objectKey('Secret', 'demomail', 'demomail-smtp')]), undefined, 'credential Secrets untouched');
});

t.test('leaf with 10 days left: renewed, CA and passwords kept, keystore password kept', async (t) => {
  const state = live(first.objects);
  const caSecret = find(first, 'Secret', 'demomail-ca');
  const ca = { certPem: data(caSecret, 'tls.crt'), keyPem: data(caSecret, 'tls.key') };
  const old = createServerCertificate({ ca, commonName: 'smtpdemo.demomail.svc.cluster.local', sans: mailserverSans(settings), now: new Date(NOW.getTime() - 355 * DAY) });
  const tlsKey = objectKey('Secret', 'demomail', 'demomail-mailserver-tls');
  const stored = state.objects[tlsKey] as KubeObject;
  state.objects[tlsKey] = { ...stored, data: { ...(stored['data'] as object), 'tls.crt': Buffer.from(old.certPem).toString('base64'), 'tls.key': Buffer.from(old.keyPem).toString('base64') } };
  const next = plan(settings, state);
  const d = decision(next, 'Secret demomail/demomail-mailserver-tls', 'certificate');
  t.equal(d?.action, 'renewed');
  t.match(d?.reason, /third of the lifetime/);
  const renewed = new X509Certificate(data(find(next, 'Secret', 'demomail-mailserver-tls'), 'tls.crt'));
  t.ok(Date.parse(renewed.validTo) > NOW.getTime() + 360 * DAY, 'a fresh one-year certificate');
  t.ok(renewed.verify(new X509Certificate(ca.certPem).publicKey), 'signed by the same CA');
  t.equal(decision(next, 'Secret demomail/demomail-ca', 'CA')?.action, 'reused');
  t.same(passwordsOf(next), passwordsOf(first));
  t.equal(data(find(next, 'Secret', 'demomail-mailserver-tls'), 'keystore-password'), data(find(first, 'Secret', 'demomail-mailserver-tls'), 'keystore-password'), 'keystore password kept');
  t.equal(decision(next, 'Secret demomail/demomail-mailserver-tls', 'keystore')?.action, 'renewed', 'keystore rebuilt for the new certificate');
});

t.test('a new mail CA carries Name Constraints permitting exactly the mail server names', async (t) => {
  const ca = data(find(first, 'Secret', 'demomail-ca'), 'tls.crt');
  t.same(nameConstraints(ca), { dns: mailserverSans(settings).filter((n) => n !== '127.0.0.1'), ips: ['127.0.0.1/32'] });
  t.same(first.warnings, []);
});

t.test('EXTRA_SANS outside the CA constraints: refused with the rotate-ca advice; rotate-ca makes a CA that permits them', async (t) => {
  const extra = settingsFrom({ EXTRA_SANS: 'mail.example.org, 10.1.2.3' });
  t.throws(
    () => plan(extra, live(first.objects)),
    /Secret demomail\/demomail-ca: the mail CA's Name Constraints do not permit mail\.example\.org, 10\.1\.2\.3 .*run `demomail rotate-ca`/,
  );
  const rotated = desiredObjects(extra, live(first.objects), { now: NOW, randomPassword: () => randomAlphanumericPassword(), rotateCa: true });
  t.equal(decision(rotated, 'Secret demomail/demomail-ca', 'CA')?.action, 'renewed');
  t.equal(decision(rotated, 'Secret demomail/demomail-ca', 'CA')?.reason, 'replacement requested (demomail rotate-ca)');
  const newCa = data(find(rotated, 'Secret', 'demomail-ca'), 'tls.crt');
  t.same(splitPemCertificates(rotated.mailCaBundle), [newCa, data(find(first, 'Secret', 'demomail-ca'), 'tls.crt')], 'old CA still trusted while valid');
  t.ok(nameConstraints(newCa)?.dns.includes('mail.example.org'));
  const d = decision(rotated, 'Secret demomail/demomail-mailserver-tls', 'certificate');
  t.equal(d?.action, 'renewed');
  const sans = subjectAltNames(data(find(rotated, 'Secret', 'demomail-mailserver-tls'), 'tls.crt'));
  t.ok(sans.dns.includes('mail.example.org'));
  t.ok(sans.ips.includes('10.1.2.3'));
  t.equal(decision(rotated, 'Secret demomail/demomail-webhook-tls', 'certificate')?.action, 'reused');
  t.same(passwordsOf(rotated), passwordsOf(first), 'passwords are never regenerated');
  // Then the next plain run keeps everything.
  const after = plan(extra, live(rotated.objects));
  t.ok(after.decisions.every((x) => x.action === 'reused'));
});

t.test('a mail CA without Name Constraints (older release) is kept, with a warning naming rotate-ca', async (t) => {
  const legacy = createCertificateAuthority({ commonName: 'demomail mail CA', now: NOW });
  const b = (s: string) => Buffer.from(s).toString('base64');
  const older = plan(settings, {
    objects: { [objectKey('Secret', 'demomail', 'demomail-ca')]: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'demomail-ca', namespace: 'demomail' }, data: { 'tls.crt': b(legacy.certPem), 'tls.key': b(legacy.keyPem), 'ca.crt': b(legacy.certPem) } } },
    labelledNamespaces: [],
  });
  t.equal(decision(older, 'Secret demomail/demomail-ca', 'CA')?.action, 'reused');
  t.equal(data(find(older, 'Secret', 'demomail-ca'), 'tls.crt'), legacy.certPem, 'no surprise rollover');
  t.match(older.warnings, [/demomail-ca: the mail CA has no Name Constraints .*kept so that running pods keep working\. Run `demomail rotate-ca`/]);
  // EXTRA_SANS may change freely under an unconstrained CA (it permits everything).
  t.doesNotThrow(() => plan(settingsFrom({ EXTRA_SANS: 'mail.example.org' }), live(older.objects)));
});

t.test('DEPLOY_MAILSERVER=0: PKI, credentials and config, but no Deployment or Services', async (t) => {
  const off = plan(settingsFrom({ DEPLOY_MAILSERVER: '0' }), EMPTY);
  t.notOk(off.objects.some((o) => o.kind === 'Deployment' || o.kind === 'Service'));
  t.ok(off.objects.some((o) => o.metadata.name === 'demomail-webhook-tls'));
  t.ok(off.objects.some((o) => o.metadata.name === 'demomail-smtp'));
  t.ok(off.objects.some((o) => o.metadata.name === 'config-mailserver'));
});

t.test('labelled namespaces receive copies of the credentials and config-mailserver (never our own)', async (t) => {
  const state = live(first.objects, ['shop', 'demomail', 'blog', 'shop']);
  const next = plan(settings, state);
  for (const ns of ['blog', 'shop']) {
    for (const [i, name] of ['demomail-smtp', 'demomail-imap', 'demomail-imap2'].entries()) {
      const copy = find(next, 'Secret', name, ns);
      t.equal(data(copy, 'password'), passwordsOf(first)[i], `${ns}/${name} carries the same password`);
      t.equal(copy['type'], 'kubernetes.io/basic-auth');
      t.equal(copy.metadata.annotations?.['demomail/copied-from'], `demomail/${name}`);
    }
    t.same(find(next, 'ConfigMap', 'config-mailserver', ns)['data'], find(next, 'ConfigMap', 'config-mailserver')['data']);
  }
  t.equal(next.objects.filter((o) => o.metadata.namespace === 'shop').length, 4, 'copied once, even when listed twice');
  t.equal(next.objects.filter((o) => o.metadata.namespace === 'demomail').length, first.objects.length, 'no second copy into our own namespace');
});

t.test('mail CA near its end: rolled over, old CA kept in the bundles while valid, leaves re-issued', async (t) => {
  const oldCa = createCertificateAuthority({ commonName: 'demomail mail CA', now: new Date(NOW.getTime() - 8 * 365 * DAY) });
  const state = live(first.objects);
  const caKey = objectKey('Secret', 'demomail', 'demomail-ca');
  const b = (s: string) => Buffer.from(s).toString('base64');
  state.objects[caKey] = { ...(state.objects[caKey] as KubeObject), data: { 'tls.crt': b(oldCa.certPem), 'tls.key': b(oldCa.keyPem), 'ca.crt': b(oldCa.certPem) } };
  const next = plan(settings, state);
  t.equal(decision(next, 'Secret demomail/demomail-ca', 'CA')?.action, 'renewed');
  const newCa = data(find(next, 'Secret', 'demomail-ca'), 'tls.crt');
  t.not(newCa, oldCa.certPem);
  t.same(splitPemCertificates(next.mailCaBundle), [newCa, oldCa.certPem], 'bundle: new CA first, then the old one');
  t.equal((find(next, 'ConfigMap', 'demomail-ca')['data'] as Record<string, string>)['ca.crt'], next.mailCaBundle);
  t.equal(decision(next, 'Secret demomail/demomail-mailserver-tls', 'certificate')?.action, 'renewed', 'leaf re-issued by the new CA');
  t.ok(new X509Certificate(data(find(next, 'Secret', 'demomail-mailserver-tls'), 'tls.crt')).verify(new X509Certificate(newCa).publicKey));
  t.same(passwordsOf(next), passwordsOf(first));
  t.equal(decision(next, 'Secret demomail/demomail-webhook-tls', 'certificate')?.action, 'reused', 'the webhook PKI is independent');

  // Next run: nothing left to do, the bundle stays new+old until the old CA expires.
  const after = plan(settings, live(next.objects));
  t.ok(after.decisions.every((d) => d.action === 'reused'));
  t.same(splitPemCertificates(after.mailCaBundle), [newCa, oldCa.certPem]);
  const expired = plan(settings, live(next.objects), new Date(NOW.getTime() + 2.5 * 365 * DAY));
  t.same(splitPemCertificates(expired.mailCaBundle), [newCa], 'old CA dropped once expired');
});

t.test('webhook certificate renewal: new one-time CA, caBundle carries new + old', async (t) => {
  const state = live(first.objects);
  const key = objectKey('Secret', 'demomail', 'demomail-webhook-tls');
  const stored = state.objects[key] as KubeObject;
  const oldWebhookCa = data(stored, 'ca.crt');
  const b = (s: string) => Buffer.from(s).toString('base64');
  // The stored key no longer belongs to the certificate: must be replaced.
  state.objects[key] = { ...stored, data: { ...(stored['data'] as object), 'tls.key': b(createCertificateAuthority({ commonName: 'x' }).keyPem) } };
  const next = plan(settings, state);
  const d = decision(next, 'Secret demomail/demomail-webhook-tls', 'certificate');
  t.equal(d?.action, 'renewed');
  t.match(d?.reason, /private key does not belong.*new one-time CA/);
  const bundle = splitPemCertificates(next.webhookCaBundle);
  t.equal(bundle.length, 2);
  t.not(bundle[0], oldWebhookCa, 'a new CA first');
  t.equal(bundle[1], oldWebhookCa, 'then the previous one');
  t.ok(new X509Certificate(data(find(next, 'Secret', 'demomail-webhook-tls'), 'tls.crt')).verify(new X509Certificate(bundle[0] as string).publicKey));
  t.equal(decision(next, 'Secret demomail/demomail-ca', 'CA')?.action, 'reused', 'the mail CA is independent');

  const again = plan(settings, live(next.objects));
  t.equal(decision(again, 'Secret demomail/demomail-webhook-tls', 'certificate')?.action, 'reused', 'stable on the next run');
  t.equal(again.webhookCaBundle, next.webhookCaBundle);

  const mwc: KubeObject = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'demomail', resourceVersion: '7' },
    webhooks: [
      { name: 'pods.demomail.io', clientConfig: { caBundle: b(oldWebhookCa), service: { name: 'demomail-webhook' } } },
      { name: 'ns.demomail.io', clientConfig: {} },
    ],
  };
  const patch = caBundlePatch(mwc, next.webhookCaBundle);
  t.same(patch, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'demomail' },
    webhooks: [
      { name: 'pods.demomail.io', clientConfig: { caBundle: b(next.webhookCaBundle) } },
      { name: 'ns.demomail.io', clientConfig: { caBundle: b(next.webhookCaBundle) } },
    ],
  }, 'every entry, and nothing but name + caBundle');
});

t.test('a stored password GreenMail cannot carry is refused, naming the Secret', async (t) => {
  const state = live(first.objects);
  const key = objectKey('Secret', 'demomail', 'demomail-imap');
  state.objects[key] = { ...(state.objects[key] as KubeObject), data: { username: 'eA==', password: Buffer.from('pa:ss@word').toString('base64') } };
  t.throws(() => plan(settings, state), /Secret demomail\/demomail-imap: the stored password contains/);
  t.doesNotThrow(() => plan(settingsFrom({ DEPLOY_MAILSERVER: '0' }), state), 'kept as is when GreenMail is not deployed');
});

t.test('a keystore that does not open is rebuilt; its usable password is kept', async (t) => {
  const state = live(first.objects);
  const key = objectKey('Secret', 'demomail', 'demomail-mailserver-tls');
  const stored = state.objects[key] as KubeObject;
  state.objects[key] = { ...stored, data: { ...(stored['data'] as object), 'keystore.p12': Buffer.from('not a keystore').toString('base64') } };
  const next = plan(settings, state);
  const d = decision(next, 'Secret demomail/demomail-mailserver-tls', 'keystore');
  t.equal(d?.action, 'renewed');
  t.match(d?.reason, /cannot be opened/);
  t.equal(decision(next, 'Secret demomail/demomail-mailserver-tls', 'certificate')?.action, 'reused');
  t.equal(data(find(next, 'Secret', 'demomail-mailserver-tls'), 'keystore-password'), data(stored, 'keystore-password'));
});

t.test('randomAlphanumericPassword: length and alphabet', async (t) => {
  const samples = Array.from({ length: 200 }, () => randomAlphanumericPassword());
  t.same(samples.filter((p) => !/^[A-Za-z0-9]{32}$/.test(p)), [], '32 characters of [A-Za-z0-9]');
  t.equal(new Set(samples).size, 200, 'no repeats');
  t.equal(new Set(samples.join('')).size, 62, 'the whole alphabet is used');
});
