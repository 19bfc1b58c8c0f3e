// Pure builders: settings (+ the PKI and credential material the planner decided on) → the exact JSON of
// each object of DESIGN §2. Every field written here is a field the `demomail` field manager owns, so
// nothing is written that we would not want to defend on the next reconcile.
import { FIELD_MANAGER, mailAddress, serviceHost, type Settings } from '../config.js';
import { ACCOUNT_ENV } from '../gateway/accounts.js';
import { GATEWAY_PORTS } from '../gateway/ports.js';
import type { ObjectRef } from './kube.js';

export { GATEWAY_PORTS };
import {
  CONTAINER_COMMAND,
  ENV,
  GREENMAIL_PORTS,
  KEYSTORE_DIR,
  KEYSTORE_KEY,
  KEYSTORE_PASSWORD_KEY,
  greenmailOpts,
  javaOpts,
} from './greenmail.js';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  [field: string]: unknown;
}
/** A Kubernetes object as raw JSON: never round-tripped through client model classes. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** Labels on everything the reconcile owns. */
export const MANAGED_LABELS = Object.freeze({
  'app.kubernetes.io/part-of': 'demomail',
  'app.kubernetes.io/managed-by': FIELD_MANAGER,
});
/** The label the mail-server NetworkPolicy (manifests/) selects to deny egress. */
export const NAME_LABEL = 'app.kubernetes.io/name';
export const TLS_CHECKSUM_ANNOTATION = 'demomail/tls-checksum';
export const CREDENTIALS_CHECKSUM_ANNOTATION = 'demomail/credentials-checksum';
export const COPIED_FROM_ANNOTATION = 'demomail/copied-from';
/**
 * glibc malloc settings of container `gateway` (src/gateway/README.md, "Performance"): every
 * allocation of 32 KiB or more (a stored message, the transient copies of one in flight) gets its
 * own mapping, returned to the kernel when freed, instead of leaving holes between the stored
 * messages in the main heap; two arenas instead of one per thread. Measured with a full store
 * (5,000 × 50 KB): RSS − store bytes 168 → 133 MiB.
 */
export const GATEWAY_MALLOC_ENV: readonly { name: string; value: string }[] = Object.freeze([
  { name: 'MALLOC_ARENA_MAX', value: '2' },
  { name: 'MALLOC_MMAP_THRESHOLD_', value: '32768' },
]);

/** Container `gateway` in the mail server pod (DESIGN §7). */
export const GATEWAY_CONTAINER = 'gateway';
export const GATEWAY_TLS_DIR = '/tls';
export const GATEWAY_UI_AUTH_DIR = '/ui-auth';
/** The image's entrypoint is `demomail`; ports and GreenMail's loopback ports are the defaults. */
export const GATEWAY_ARGS = Object.freeze(['gateway', '--cert', `${GATEWAY_TLS_DIR}/tls.crt`, '--key', `${GATEWAY_TLS_DIR}/tls.key`, '--ui-auth-dir', GATEWAY_UI_AUTH_DIR]);
/** GreenMail's image user is a named system user; runAsNonRoot needs a number to check. */
export const MAILSERVER_UID = 10001;

export function objectKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}
export function keyOf(obj: KubeObject): string {
  return objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name);
}
/** "Secret demomail/demomail-ca", for logs and errors. */
export function describe(obj: Pick<KubeObject, 'kind' | 'metadata'>): string {
  const ns = obj.metadata.namespace;
  return `${obj.kind} ${ns ? `${ns}/` : ''}${obj.metadata.name}`;
}

export function b64(text: string | Buffer): string {
  return (typeof text === 'string' ? Buffer.from(text, 'utf8') : text).toString('base64');
}

/** The mail server runs under its own ServiceAccount (created by manifests/), named like the Deployment. */
export function mailserverServiceAccountName(settings: Settings): string {
  return settings.names.mailserverDeployment;
}

function secret(settings: Settings, name: string, type: string, data: Record<string, string>, namespace = settings.namespace, extra: Partial<ObjectMeta> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, labels: { ...MANAGED_LABELS, ...(extra.labels ?? {}) }, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    type,
    data,
  };
}

function configMap(name: string, namespace: string, data: Record<string, string>, annotations?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, labels: { ...MANAGED_LABELS }, ...(annotations ? { annotations } : {}) },
    data,
  };
}

export interface CaMaterial {
  certPem: string;
  keyPem: string;
  /** Current CA first, then the previous one while it is still valid (rollover). */
  bundlePem: string;
}

/** Secret demomail-ca: the mail CA pair and the trust bundle. */
export function caSecret(settings: Settings, ca: CaMaterial): KubeObject {
  return secret(settings, settings.names.caSecret, 'kubernetes.io/tls', {
    'tls.crt': b64(ca.certPem),
    'tls.key': b64(ca.keyPem),
    'ca.crt': b64(ca.bundlePem),
  });
}

/** ConfigMap demomail-ca: the public mail CA bundle only (what the webhook injects). */
export function caConfigMap(settings: Settings, bundlePem: string): KubeObject {
  return configMap(settings.names.caConfigMap, settings.namespace, { 'ca.crt': bundlePem });
}

export interface LeafMaterial {
  certPem: string;
  keyPem: string;
  caBundlePem: string;
}

export function webhookTlsSecret(settings: Settings, leaf: LeafMaterial): KubeObject {
  return secret(settings, settings.names.webhookTlsSecret, 'kubernetes.io/tls', {
    'tls.crt': b64(leaf.certPem),
    'tls.key': b64(leaf.keyPem),
    'ca.crt': b64(leaf.caBundlePem),
  });
}

export interface MailserverTlsMaterial extends LeafMaterial {
  keystore: Buffer;
  keystorePassword: string;
}

export function mailserverTlsSecret(settings: Settings, tls: MailserverTlsMaterial): KubeObject {
  return secret(settings, settings.names.mailserverTlsSecret, 'kubernetes.io/tls', {
    'tls.crt': b64(tls.certPem),
    'tls.key': b64(tls.keyPem),
    'ca.crt': b64(tls.caBundlePem),
    [KEYSTORE_KEY]: b64(tls.keystore),
    [KEYSTORE_PASSWORD_KEY]: b64(tls.keystorePassword),
  });
}

export interface Credential {
  secretName: string;
  localPart: string;
  password: string;
}

export function credentials(settings: Settings, passwords: { smtp: string; imap: string; imap2: string }): Credential[] {
  return [
    { secretName: settings.names.smtpSecret, localPart: settings.smtpUser, password: passwords.smtp },
    { secretName: settings.names.imapSecret, localPart: settings.imapUser, password: passwords.imap },
    { secretName: settings.names.imap2Secret, localPart: settings.imap2User, password: passwords.imap2 },
  ];
}

/** `kubernetes.io/basic-auth`: `username` = full address (the login, -Dgreenmail.users.login=email). */
export function credentialSecret(settings: Settings, credential: Credential, namespace = settings.namespace): KubeObject {
  const copied = namespace !== settings.namespace;
  return secret(
    settings,
    credential.secretName,
    'kubernetes.io/basic-auth',
    { username: b64(mailAddress(settings, credential.localPart)), password: b64(credential.password) },
    namespace,
    copied ? { annotations: { [COPIED_FROM_ANNOTATION]: `${settings.namespace}/${credential.secretName}` } } : {},
  );
}

/** The seed's `config-mailserver`: each key holds the NAME of the Secret with that credential. */
export function mailserverConfigMap(settings: Settings, namespace = settings.namespace): KubeObject {
  const n = settings.names;
  return configMap(
    n.mailserverConfig,
    namespace,
    {
      SMTP_USER_SECRET: n.smtpSecret,
      SMTP_PASSWD_SECRET: n.smtpSecret,
      IMAP_USER_SECRET: n.imapSecret,
      IMAP_PASSWD_SECRET: n.imapSecret,
      IMAP_USER2_SECRET: n.imap2Secret,
    },
    namespace !== settings.namespace ? { [COPIED_FROM_ANNOTATION]: `${settings.namespace}/${n.mailserverConfig}` } : undefined,
  );
}

export interface DeploymentChecksums {
  /** Changes when the certificate or keystore changes: GreenMail reads the keystore at startup only. */
  tls: string;
  /** Changes when a password changes: env from secretKeyRef is resolved at container start only. */
  credentials: string;
}

export function mailserverDeployment(settings: Settings, checksums: DeploymentChecksums): KubeObject {
  const n = settings.names;
  const selector = { [NAME_LABEL]: n.mailserverDeployment };
  const secretEnv = (name: string, secretName: string, key: string) => ({
    name,
    valueFrom: { secretKeyRef: { name: secretName, key } },
  });
  // GreenMail's API (and its /api/service/readiness) now listens on 127.0.0.1, which the kubelet's
  // probes (sent to the pod IP) cannot reach, and the image has no HTTP client for an exec probe: a
  // TCP check of IMAP says the JVM serves. The gateway's /readyz adds GreenMail's own readiness API.
  const probe = (periodSeconds: number, failureThreshold: number) => ({
    tcpSocket: { port: 'imap' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  const gatewayProbe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: 'http', scheme: 'HTTP' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  const restricted = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  const accountSecrets = [n.smtpSecret, n.imapSecret, n.imap2Secret];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: n.mailserverDeployment,
      namespace: settings.namespace,
      labels: { ...MANAGED_LABELS, ...selector, 'app.kubernetes.io/component': 'mailserver' },
    },
    spec: {
      // Mail lives in the JVM's memory: two replicas would be two mailboxes, and a rolling update
      // would briefly split them. One pod, replaced (Recreate).
      replicas: 1,
      strategy: { type: 'Recreate' },
      revisionHistoryLimit: 3,
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels: { ...MANAGED_LABELS, ...selector, 'app.kubernetes.io/component': 'mailserver' },
          annotations: {
            [TLS_CHECKSUM_ANNOTATION]: checksums.tls,
            [CREDENTIALS_CHECKSUM_ANNOTATION]: checksums.credentials,
          },
        },
        spec: {
          serviceAccountName: mailserverServiceAccountName(settings),
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: MAILSERVER_UID,
            runAsGroup: MAILSERVER_UID,
            fsGroup: MAILSERVER_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'greenmail',
              image: settings.mailserverImage,
              imagePullPolicy: 'IfNotPresent',
              command: [...CONTAINER_COMMAND],
              // Order matters: the kubelet expands $(VAR) only from variables declared earlier.
              env: [
                secretEnv(ENV.smtpPassword, n.smtpSecret, 'password'),
                secretEnv(ENV.imapPassword, n.imapSecret, 'password'),
                secretEnv(ENV.imap2Password, n.imap2Secret, 'password'),
                secretEnv(ENV.keystorePassword, n.mailserverTlsSecret, KEYSTORE_PASSWORD_KEY),
                { name: ENV.greenmailOpts, value: greenmailOpts(settings) },
                { name: ENV.javaOpts, value: javaOpts(settings) },
              ],
              // SMTP and the API listen on 127.0.0.1 (only the gateway uses them): not declared.
              ports: [
                { name: 'imap', containerPort: GREENMAIL_PORTS.imap, protocol: 'TCP' },
                { name: 'imaps', containerPort: GREENMAIL_PORTS.imaps, protocol: 'TCP' },
              ],
              startupProbe: probe(2, 60),
              readinessProbe: probe(5, 3),
              livenessProbe: probe(10, 6),
              resources: {
                requests: { cpu: '50m', memory: settings.mailserverMemoryLimit },
                limits: { memory: settings.mailserverMemoryLimit },
              },
              securityContext: { ...restricted, runAsUser: MAILSERVER_UID },
              volumeMounts: [
                { name: 'keystore', mountPath: KEYSTORE_DIR, readOnly: true },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
            {
              // The SMTP front, capture store and viewer (DESIGN §7, §8); runs as the pod's user.
              name: GATEWAY_CONTAINER,
              image: settings.image,
              imagePullPolicy: settings.imagePullPolicy,
              args: [...GATEWAY_ARGS],
              envFrom: [{ configMapRef: { name: n.config }, prefix: 'DEMOMAIL_' }],
              env: [
                ...ACCOUNT_ENV.flatMap((names, i) => [
                  secretEnv(names.username, accountSecrets[i] as string, 'username'),
                  secretEnv(names.password, accountSecrets[i] as string, 'password'),
                ]),
                ...GATEWAY_MALLOC_ENV,
              ],
              ports: [
                { name: 'smtp', containerPort: GATEWAY_PORTS.smtp, protocol: 'TCP' },
                { name: 'submission', containerPort: GATEWAY_PORTS.submission, protocol: 'TCP' },
                { name: 'smtps', containerPort: GATEWAY_PORTS.smtps, protocol: 'TCP' },
                { name: 'http', containerPort: GATEWAY_PORTS.http, protocol: 'TCP' },
              ],
              startupProbe: gatewayProbe('/livez', 2, 30),
              readinessProbe: gatewayProbe('/readyz', 5, 3),
              livenessProbe: gatewayProbe('/livez', 10, 6),
              resources: {
                requests: { cpu: '50m', memory: settings.gateway.memoryLimit },
                limits: { memory: settings.gateway.memoryLimit },
              },
              securityContext: restricted,
              volumeMounts: [
                // The whole directory (not subPath items): the kubelet's `..data` swap is what the
                // gateway watches to reload a renewed certificate without a restart.
                { name: 'gateway-tls', mountPath: GATEWAY_TLS_DIR, readOnly: true },
                { name: 'ui-auth', mountPath: GATEWAY_UI_AUTH_DIR, readOnly: true },
              ],
            },
          ],
          volumes: [
            {
              name: 'keystore',
              // Only the keystore: the PEM key and the passwords stay out of the container's filesystem.
              secret: { secretName: n.mailserverTlsSecret, items: [{ key: KEYSTORE_KEY, path: KEYSTORE_KEY }], defaultMode: 0o440 },
            },
            // readOnlyRootFilesystem: the JVM still wants a writable /tmp (hsperfdata, temp files).
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
            {
              name: 'gateway-tls',
              // Certificate and key only (not the keystore or its password).
              secret: { secretName: n.mailserverTlsSecret, items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }], defaultMode: 0o440 },
            },
            // Optional: `kubectl -n NS create secret generic demomail-ui-auth --from-literal=username=… --from-literal=password=…`
            // turns on basic auth for the viewer (read at start: restart the pod after creating it).
            { name: 'ui-auth', secret: { secretName: n.uiAuthSecret, optional: true, defaultMode: 0o440 } },
          ],
        },
      },
    },
  };
}

function service(settings: Settings, name: string, ports: { name: string; port: number; targetPort: number }[]): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: settings.namespace, labels: { ...MANAGED_LABELS } },
    spec: {
      type: 'ClusterIP',
      selector: { [NAME_LABEL]: settings.names.mailserverDeployment },
      ports: ports.map((p) => ({ ...p, protocol: 'TCP' })),
    },
  };
}

/** smtpdemo (25/465/587 → the gateway), imapdemo (143/993 → GreenMail), demomail-ui (8025 → the viewer). */
export function mailServices(settings: Settings): KubeObject[] {
  const g = GATEWAY_PORTS;
  const p = GREENMAIL_PORTS;
  return [
    service(settings, settings.names.smtpService, [
      { name: 'smtp', port: 25, targetPort: g.smtp },
      { name: 'smtps', port: 465, targetPort: g.smtps },
      { name: 'submission', port: 587, targetPort: g.submission },
    ]),
    service(settings, settings.names.imapService, [
      { name: 'imap', port: 143, targetPort: p.imap },
      { name: 'imaps', port: 993, targetPort: p.imaps },
    ]),
    service(settings, settings.names.uiService, [{ name: 'http', port: g.http, targetPort: g.http }]),
  ];
}

/** Objects of earlier releases the reconcile deletes when present (GreenMail's API Service). */
export function obsoleteMailObjects(settings: Settings): ObjectRef[] {
  return [{ apiVersion: 'v1', kind: 'Service', metadata: { name: settings.names.apiService, namespace: settings.namespace } }];
}

/** CN of the mail-server certificate: the name CiviCRM is told to use. */
export function mailserverCommonName(settings: Settings): string {
  return serviceHost(settings, settings.names.smtpService);
}
