// Pure builders: settings (+ the PKI and credential material the planner decided on) → the exact JSON of
// each object of DESIGN §2. Every field written here is a field the `demomail` field manager owns, so
// nothing is written that we would not want to defend on the next reconcile.
import { FIELD_MANAGER, mailAddress, serviceHost, type Settings } from '../config.js';
import {
  CONTAINER_COMMAND,
  ENV,
  GREENMAIL_PORTS,
  KEYSTORE_DIR,
  KEYSTORE_KEY,
  KEYSTORE_PASSWORD_KEY,
  READINESS_PATH,
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
  const probe = (periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path: READINESS_PATH, port: 'api', scheme: 'HTTP' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
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
              ports: [
                { name: 'smtp', containerPort: GREENMAIL_PORTS.smtp, protocol: 'TCP' },
                { name: 'smtps', containerPort: GREENMAIL_PORTS.smtps, protocol: 'TCP' },
                { name: 'imap', containerPort: GREENMAIL_PORTS.imap, protocol: 'TCP' },
                { name: 'imaps', containerPort: GREENMAIL_PORTS.imaps, protocol: 'TCP' },
                { name: 'api', containerPort: GREENMAIL_PORTS.api, protocol: 'TCP' },
              ],
              startupProbe: probe(2, 60),
              readinessProbe: probe(5, 3),
              livenessProbe: probe(10, 6),
              resources: {
                requests: { cpu: '50m', memory: settings.mailserverMemoryLimit },
                limits: { memory: settings.mailserverMemoryLimit },
              },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                runAsUser: MAILSERVER_UID,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
              volumeMounts: [
                { name: 'keystore', mountPath: KEYSTORE_DIR, readOnly: true },
                { name: 'tmp', mountPath: '/tmp' },
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

/** smtpdemo (25/465/587), imapdemo (143/993), demomail-api (8080). No STARTTLS: 587 is plain SMTP too. */
export function mailServices(settings: Settings): KubeObject[] {
  const p = GREENMAIL_PORTS;
  return [
    service(settings, settings.names.smtpService, [
      { name: 'smtp', port: 25, targetPort: p.smtp },
      { name: 'smtps', port: 465, targetPort: p.smtps },
      { name: 'submission', port: 587, targetPort: p.smtp },
    ]),
    service(settings, settings.names.imapService, [
      { name: 'imap', port: 143, targetPort: p.imap },
      { name: 'imaps', port: 993, targetPort: p.imaps },
    ]),
    service(settings, settings.names.apiService, [{ name: 'api', port: p.api, targetPort: p.api }]),
  ];
}

/** CN of the mail-server certificate: the name CiviCRM is told to use. */
export function mailserverCommonName(settings: Settings): string {
  return serviceHost(settings, settings.names.smtpService);
}
