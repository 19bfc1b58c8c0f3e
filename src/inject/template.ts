// What an injected pod receives (DESIGN §3): the volume, the init container, the per-container
// mount and environment, and the status annotation. Pure data builders; plan.ts decides where
// (and whether) each piece goes.
import { certificateFingerprint } from '../pki/certificates.js';
import { INIT_CONTAINER, INJECTED_VOLUME, MOUNT_PATH, type InjectionSettings } from '../config.js';
import type { JsonObject } from './plan.js';

/**
 * Bumped when the shape of what we inject changes, so an old status is recognisably old. Not for
 * the init container's mount at the token path (noTokenMount): a pod injected without it is still
 * correctly injected, and a new version would patch every such pod (plan.ts, requiredOfInit).
 */
export const STATUS_VERSION = 1;

export const CA_FILE = `${MOUNT_PATH}/ca.crt`;
export const CA_BUNDLE_FILE = `${MOUNT_PATH}/ca-bundle.crt`;
/** Leading ':' (an empty list entry) keeps PHP's compiled-in scan directory and adds ours after it. */
export const PHP_INI_SCAN_DIR_VALUE = `:${MOUNT_PATH}/php`;

/** Variables whose user-set value means that client will not trust the mail CA through it. */
export const CA_VARIABLES: readonly string[] = ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS'];

export function desiredVolume(): JsonObject {
  // Memory-backed: the files are public, but a node disk is not needed for 2 files and a
  // size limit keeps a misbehaving init container from eating node memory.
  return { name: INJECTED_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '2Mi' } };
}

export function desiredMount(): JsonObject {
  return { name: INJECTED_VOLUME, mountPath: MOUNT_PATH, readOnly: true };
}

/** Where the ServiceAccount admission plugin mounts the API token (its DefaultAPITokenMountPath). */
export const SERVICE_ACCOUNT_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A directory of our volume nothing writes: the kubelet creates it empty for the subPath mount. */
export const NO_TOKEN_SUBPATH = '.no-serviceaccount-token';

/**
 * The init container's own read-only mount at the token path (issue 13). The ServiceAccount
 * admission plugin skips every container that already has *any* mount at that path (it compares
 * mountPath only), so: (1) it no longer adds the token to the init container we just added, the
 * pod does not change after our patch, and the API server does not call us a second time
 * (`reinvocationPolicy: IfNeeded`); (2) the init container, which never talks to the API server,
 * gets no token. The subPath is an empty directory of our emptyDir, so nothing (no mail CA
 * `ca.crt`) appears where a cluster CA would be expected. Restricted Pod Security checks volume
 * types, not mounts: an emptyDir with a subPath is allowed.
 */
export function noTokenMount(): JsonObject {
  return { name: INJECTED_VOLUME, mountPath: SERVICE_ACCOUNT_TOKEN_PATH, subPath: NO_TOKEN_SUBPATH, readOnly: true };
}

/**
 * The init container. The image's entrypoint is `demomail`, so `args` alone selects the
 * subcommand. Resources: it reads one env variable and writes three small files; 32Mi/10m is
 * what Node needs to start, the limits leave room for a large system bundle (64Mi, 200m).
 * securityContext satisfies the `restricted` Pod Security Standard without a fixed UID
 * (the image runs as a non-root user; OpenShift-style random UIDs also work).
 */
export function desiredInitContainer(settings: InjectionSettings): JsonObject {
  return {
    name: INIT_CONTAINER,
    image: settings.image,
    imagePullPolicy: settings.imagePullPolicy,
    args: ['install-ca', '--dir', MOUNT_PATH],
    env: [{ name: 'DEMOMAIL_CA_PEM', value: settings.caPem }],
    // Measured: `install-ca` peaks at ~60 MiB RSS on Node 20 and ~72 MiB on Node 24 (the image's
    // runtime), so 128Mi leaves headroom; 500m keeps Node's start-up under a second.
    resources: {
      requests: { cpu: '10m', memory: '64Mi' },
      limits: { cpu: '500m', memory: '128Mi' },
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [{ name: INJECTED_VOLUME, mountPath: MOUNT_PATH }, noTokenMount()],
  };
}

function secretKeyEnv(name: string, secret: string, key: 'username' | 'password'): JsonObject {
  // optional: the Secret copies reach a namespace only once it is labelled; a pod must still start.
  return { name, valueFrom: { secretKeyRef: { name: secret, key, optional: true } } };
}

/** Environment for every user container, in the order it is appended. */
export function desiredEnv(settings: InjectionSettings, phpIni: boolean): JsonObject[] {
  const { smtp, imap, imap2 } = settings.secretNames;
  const env: JsonObject[] = [
    { name: 'SSL_CERT_FILE', value: CA_BUNDLE_FILE },
    { name: 'REQUESTS_CA_BUNDLE', value: CA_BUNDLE_FILE },
    { name: 'NODE_EXTRA_CA_CERTS', value: CA_FILE },
    { name: 'DEMOMAIL_SMTP_HOST', value: settings.smtpHost },
    { name: 'DEMOMAIL_SMTP_PORT', value: String(settings.smtpPort) },
    { name: 'DEMOMAIL_IMAP_HOST', value: settings.imapHost },
    { name: 'DEMOMAIL_IMAP_PORT', value: String(settings.imapPort) },
    { name: 'DEMOMAIL_DOMAIN', value: settings.mailDomain },
    // The seed's variables hold Secret *names* (like ConfigMap config-mailserver, DESIGN §2):
    // its scripts read the username/password keys of the named Secret themselves.
    { name: 'SMTP_USER_SECRET', value: smtp },
    { name: 'SMTP_PASSWD_SECRET', value: smtp },
    { name: 'IMAP_USER_SECRET', value: imap },
    { name: 'IMAP_PASSWD_SECRET', value: imap },
    { name: 'IMAP_USER2_SECRET', value: imap2 },
    secretKeyEnv('DEMOMAIL_SMTP_USERNAME', smtp, 'username'),
    secretKeyEnv('DEMOMAIL_SMTP_PASSWORD', smtp, 'password'),
    secretKeyEnv('DEMOMAIL_IMAP_USERNAME', imap, 'username'),
    secretKeyEnv('DEMOMAIL_IMAP_PASSWORD', imap, 'password'),
    secretKeyEnv('DEMOMAIL_IMAP2_USERNAME', imap2, 'username'),
    secretKeyEnv('DEMOMAIL_IMAP2_PASSWORD', imap2, 'password'),
  ];
  if (phpIni) env.push({ name: 'PHP_INI_SCAN_DIR', value: PHP_INI_SCAN_DIR_VALUE });
  return env;
}

export interface StatusContent {
  initContainers: string[];
  containers: string[];
  phpIni: boolean;
}

/**
 * The `demomail/status` annotation: compact JSON with a fixed key order and no timestamp, so
 * the webhook and `demomail inject` write the same bytes for the same pod and settings.
 */
export function statusAnnotation(settings: InjectionSettings, content: StatusContent): string {
  return JSON.stringify({
    version: STATUS_VERSION,
    caFingerprint: caFingerprint(settings.caPem),
    volume: INJECTED_VOLUME,
    initContainer: INIT_CONTAINER,
    initContainers: content.initContainers,
    containers: content.containers,
    phpIni: content.phpIni,
  });
}

export class CaPemError extends Error {
  override name = 'CaPemError';
}

let lastFingerprint: { pem: string; fingerprint: string } | undefined;

/** `sha256:<hex>` of the DER of the first CERTIFICATE block (the current CA during a rollover). */
export function caFingerprint(pem: string): string {
  if (lastFingerprint?.pem === pem) return lastFingerprint.fingerprint;
  let fingerprint: string;
  try {
    // Strict on purpose: a CA file holding anything but certificates (a key!) must never reach a pod spec.
    fingerprint = certificateFingerprint(pem);
  } catch (err) {
    throw new CaPemError(`the mail CA PEM does not parse (${(err as Error).message}); pass the CA certificate (ca.crt), not a key or an empty file`);
  }
  lastFingerprint = { pem, fingerprint };
  return fingerprint;
}
