// Every setting and every object name in one place (DESIGN §2). The same keys live in the
// ConfigMap `demomail-config`, in the process environment, and in `--config FILE` (YAML map).
// Pure: callers hand in the raw key/value map; nothing here reads files or the environment.
import { parseSan } from './pki/certificates.js';

export interface Settings {
  /** Namespace that holds the mail server, the webhook and the PKI secrets. */
  namespace: string;
  clusterDomain: string;
  /** "1" deploys GreenMail; anything else = PKI, secrets and webhook only. */
  deployMailserver: boolean;
  /** Mail domain of the generated users (`smtp@DOMAIN`, ...). */
  mailDomain: string;
  /** Extra DNS names or IP addresses for the mail server certificate. */
  extraSans: string[];
  /** Our own image: the injected init container and the bootstrap Job. */
  image: string;
  imagePullPolicy: string;
  mailserverImage: string;
  mailserverMemoryLimit: string;
  /** JVM heap for GreenMail, kept below the memory limit. */
  mailserverHeap: string;
  smtpUser: string;
  imapUser: string;
  imap2User: string;
  /** Mail gateway (DESIGN §7). */
  gateway: GatewaySettings;
  names: ObjectNames;
}

export interface GatewaySettings {
  /** Domain whose local parts `hard*`, `soft*`, `ooo*` produce simulated outcomes (default bounce.MAIL_DOMAIN). */
  simulateDomain: string;
  /** Mailbox that receives CiviMail return paths without `+` (default: the IMAP account's address). */
  bounceMailbox: string;
  /** Local-part prefix of CiviMail return paths (CiviCRM's Mail Account "localpart"); may be empty. */
  verpLocalpart: string;
  /** Capture store bounds: oldest messages are evicted first beyond either. */
  storeMaxMessages: number;
  storeMaxBytes: number;
  /** Largest message accepted (SMTP SIZE); larger ones get 552. */
  messageSizeLimit: number;
  /** Most RCPT TO per message; beyond it 452. */
  maxRecipients: number;
  /** Memory limit of container `gateway` (the store lives in it). */
  memoryLimit: string;
}

export interface ObjectNames {
  config: string;
  caSecret: string;
  caConfigMap: string;
  mailserverTlsSecret: string;
  smtpSecret: string;
  imapSecret: string;
  imap2Secret: string;
  mailserverConfig: string;
  mailserverDeployment: string;
  smtpService: string;
  imapService: string;
  /** Service of GreenMail's REST API in releases before the gateway; the reconcile deletes it. */
  apiService: string;
  /** Service of the mail viewer (port 8025). */
  uiService: string;
  /** Optional Secret (`username`, `password`) that turns on basic auth for the viewer. */
  uiAuthSecret: string;
  webhookDeployment: string;
  webhookService: string;
  webhookTlsSecret: string;
  webhookConfiguration: string;
  bootstrapServiceAccount: string;
}

/** Labels and annotations are part of the API users write into their manifests: fixed, not settings. */
export const POD_OPT_IN_LABEL = 'demomail/inject';
export const NAMESPACE_OPT_IN_LABEL = 'demomail/injection';
export const STATUS_ANNOTATION = 'demomail/status';
export const PHP_INI_ANNOTATION = 'demomail/php-ini';
export const FIELD_MANAGER = 'demomail';
export const INJECTED_VOLUME = 'demomail-ca';
export const INIT_CONTAINER = 'demomail-ca-init';
export const MOUNT_PATH = '/etc/demomail';

export const SMTPS_PORT = 465;
export const IMAPS_PORT = 993;

/** Defaults, keyed exactly as in ConfigMap demomail-config. */
export const DEFAULTS: Readonly<Record<string, string>> = Object.freeze({
  NAMESPACE: 'demomail',
  CLUSTER_DOMAIN: 'cluster.local',
  DEPLOY_MAILSERVER: '1',
  MAIL_DOMAIN: 'demomail.test',
  EXTRA_SANS: '',
  IMAGE: 'ghcr.io/demomail/demomail:0.1.0',
  IMAGE_PULL_POLICY: 'IfNotPresent',
  MAILSERVER_IMAGE: 'greenmail/standalone:2.1.7',
  MAILSERVER_MEMORY_LIMIT: '512Mi',
  MAILSERVER_HEAP: '256m',
  SMTP_USER: 'smtp',
  IMAP_USER: 'imap',
  IMAP_USER2: 'imap2',
  SIMULATE_DOMAIN: '',
  BOUNCE_MAILBOX: '',
  VERP_LOCALPART: '',
  STORE_MAX_MESSAGES: '5000',
  STORE_MAX_BYTES: '256Mi',
  MESSAGE_SIZE_LIMIT: '25Mi',
  MAX_RECIPIENTS: '1000',
  GATEWAY_MEMORY_LIMIT: '768Mi',
  CONFIG_NAME: 'demomail-config',
  CA_SECRET: 'demomail-ca',
  CA_CONFIGMAP: 'demomail-ca',
  MAILSERVER_TLS_SECRET: 'demomail-mailserver-tls',
  SMTP_SECRET: 'demomail-smtp',
  IMAP_SECRET: 'demomail-imap',
  IMAP2_SECRET: 'demomail-imap2',
  MAILSERVER_CONFIG: 'config-mailserver',
  MAILSERVER_DEPLOYMENT: 'demomail-mailserver',
  SMTP_SERVICE: 'smtpdemo',
  IMAP_SERVICE: 'imapdemo',
  API_SERVICE: 'demomail-api',
  UI_SERVICE: 'demomail-ui',
  UI_AUTH_SECRET: 'demomail-ui-auth',
  WEBHOOK_DEPLOYMENT: 'demomail-webhook',
  WEBHOOK_SERVICE: 'demomail-webhook',
  WEBHOOK_TLS_SECRET: 'demomail-webhook-tls',
  WEBHOOK_CONFIGURATION: 'demomail',
  BOOTSTRAP_SERVICE_ACCOUNT: 'demomail-bootstrap',
});

export class SettingsError extends Error {
  override name = 'SettingsError';
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LOCAL_PART = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

/**
 * Settings from a raw map (ConfigMap data, env, YAML). Unknown keys are ignored so that one
 * ConfigMap can serve every role; bad values throw a SettingsError naming key, value and fix.
 */
export function settingsFrom(raw: Readonly<Record<string, string | undefined>> = {}): Settings {
  const get = (key: string): string => {
    const value = raw[key];
    return (value === undefined || value === '' ? DEFAULTS[key] : value.trim()) ?? '';
  };
  const name = (key: string, pattern = DNS_LABEL): string => {
    const value = get(key);
    if (!pattern.test(value)) {
      throw new SettingsError(
        `setting ${key}="${value}" is not a valid Kubernetes name (lower-case letters, digits and '-'); fix it in ConfigMap demomail-config or the environment`,
      );
    }
    return value;
  };
  const user = (key: string): string => {
    const value = get(key);
    if (!LOCAL_PART.test(value)) {
      throw new SettingsError(
        `setting ${key}="${value}" must be the local part of a mail address (letters, digits, '.', '_', '-'), without '@'`,
      );
    }
    return value;
  };
  const mailDomain = get('MAIL_DOMAIN').toLowerCase();
  if (!DNS_NAME.test(mailDomain)) {
    throw new SettingsError(`setting MAIL_DOMAIN="${mailDomain}" is not a DNS name such as demomail.test`);
  }
  const clusterDomain = get('CLUSTER_DOMAIN').toLowerCase();
  if (!DNS_NAME.test(clusterDomain)) {
    throw new SettingsError(`setting CLUSTER_DOMAIN="${clusterDomain}" is not a DNS name such as cluster.local`);
  }
  // The certificate code's own parser decides, so whatever passes here also fits in a certificate.
  const extraSans = get('EXTRA_SANS')
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((san) => {
      try {
        return parseSan(san).value;
      } catch (err) {
        throw new SettingsError(`setting EXTRA_SANS contains "${san}", which is neither a DNS name nor an IP address (${(err as Error).message})`);
      }
    });
  const heap = get('MAILSERVER_HEAP');
  if (!/^\d+[kmgKMG]?$/.test(heap)) {
    throw new SettingsError(`setting MAILSERVER_HEAP="${heap}" must be a JVM size such as 256m`);
  }
  const image = get('IMAGE');
  const mailserverImage = get('MAILSERVER_IMAGE');
  for (const [key, value] of [['IMAGE', image], ['MAILSERVER_IMAGE', mailserverImage]] as const) {
    if (/\s/.test(value) || value === '') {
      throw new SettingsError(`setting ${key}="${value}" is not a container image reference`);
    }
  }
  const pullPolicy = get('IMAGE_PULL_POLICY');
  if (!['Always', 'IfNotPresent', 'Never'].includes(pullPolicy)) {
    throw new SettingsError(`setting IMAGE_PULL_POLICY="${pullPolicy}" must be Always, IfNotPresent or Never`);
  }
  const memory = get('MAILSERVER_MEMORY_LIMIT');
  if (!/^\d+(Ki|Mi|Gi)?$/.test(memory)) {
    throw new SettingsError(`setting MAILSERVER_MEMORY_LIMIT="${memory}" must be a quantity such as 512Mi`);
  }
  const gateway = gatewaySettings(get, mailDomain, user('IMAP_USER'));
  const gatewayMemory = get('GATEWAY_MEMORY_LIMIT');
  if (!/^\d+(Ki|Mi|Gi)?$/.test(gatewayMemory)) {
    throw new SettingsError(`setting GATEWAY_MEMORY_LIMIT="${gatewayMemory}" must be a quantity such as 512Mi`);
  }
  gateway.memoryLimit = gatewayMemory;
  return {
    namespace: name('NAMESPACE'),
    clusterDomain,
    deployMailserver: get('DEPLOY_MAILSERVER') === '1',
    mailDomain,
    extraSans,
    image,
    imagePullPolicy: pullPolicy,
    mailserverImage,
    mailserverMemoryLimit: memory,
    mailserverHeap: heap,
    smtpUser: user('SMTP_USER'),
    imapUser: user('IMAP_USER'),
    imap2User: user('IMAP_USER2'),
    gateway,
    names: {
      config: name('CONFIG_NAME', DNS_NAME),
      caSecret: name('CA_SECRET', DNS_NAME),
      caConfigMap: name('CA_CONFIGMAP', DNS_NAME),
      mailserverTlsSecret: name('MAILSERVER_TLS_SECRET', DNS_NAME),
      smtpSecret: name('SMTP_SECRET', DNS_NAME),
      imapSecret: name('IMAP_SECRET', DNS_NAME),
      imap2Secret: name('IMAP2_SECRET', DNS_NAME),
      mailserverConfig: name('MAILSERVER_CONFIG', DNS_NAME),
      mailserverDeployment: name('MAILSERVER_DEPLOYMENT'),
      smtpService: name('SMTP_SERVICE'),
      imapService: name('IMAP_SERVICE'),
      apiService: name('API_SERVICE'),
      uiService: name('UI_SERVICE'),
      uiAuthSecret: name('UI_AUTH_SECRET', DNS_NAME),
      webhookDeployment: name('WEBHOOK_DEPLOYMENT'),
      webhookService: name('WEBHOOK_SERVICE'),
      webhookTlsSecret: name('WEBHOOK_TLS_SECRET', DNS_NAME),
      webhookConfiguration: name('WEBHOOK_CONFIGURATION', DNS_NAME),
      bootstrapServiceAccount: name('BOOTSTRAP_SERVICE_ACCOUNT', DNS_NAME),
    },
  };
}

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1000, M: 1000 ** 2, G: 1000 ** 3 };

/** `25Mi`, `256Mi`, `1048576` → bytes; undefined for anything else. */
export function parseByteQuantity(text: string): number | undefined {
  const match = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(text);
  if (!match) return undefined;
  const bytes = Number(match[1]) * (BYTE_UNITS[match[2] ?? ''] ?? 1);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

function gatewaySettings(get: (key: string) => string, mailDomain: string, imapUser: string): GatewaySettings {
  const simulateDomain = (get('SIMULATE_DOMAIN') || `bounce.${mailDomain}`).toLowerCase();
  if (!DNS_NAME.test(simulateDomain)) {
    throw new SettingsError(`setting SIMULATE_DOMAIN="${simulateDomain}" is not a DNS name such as bounce.${mailDomain}`);
  }
  const bounceMailbox = (get('BOUNCE_MAILBOX') || `${imapUser}@${mailDomain}`).toLowerCase();
  const [local, domain, ...rest] = bounceMailbox.split('@');
  if (rest.length > 0 || !local || !LOCAL_PART.test(local) || !domain || !DNS_NAME.test(domain)) {
    throw new SettingsError(`setting BOUNCE_MAILBOX="${bounceMailbox}" must be one mail address such as ${imapUser}@${mailDomain}`);
  }
  const verpLocalpart = get('VERP_LOCALPART');
  if (!/^[a-z0-9._+-]{0,40}$/i.test(verpLocalpart)) {
    throw new SettingsError(`setting VERP_LOCALPART="${verpLocalpart}" must be empty or the start of a local part such as "imap+" (letters, digits, '.', '_', '-', '+')`);
  }
  const count = (key: string, min: number, max: number): number => {
    const value = get(key);
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new SettingsError(`setting ${key}="${value}" must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
  const bytes = (key: string, min: number, max: number): number => {
    const value = get(key);
    const n = parseByteQuantity(value);
    if (n === undefined || n < min || n > max) {
      throw new SettingsError(`setting ${key}="${value}" must be a size such as 25Mi, from ${min} to ${max} bytes`);
    }
    return n;
  };
  return {
    simulateDomain,
    bounceMailbox,
    verpLocalpart,
    storeMaxMessages: count('STORE_MAX_MESSAGES', 1, 1_000_000),
    storeMaxBytes: bytes('STORE_MAX_BYTES', 1024 ** 2, 64 * 1024 ** 3),
    messageSizeLimit: bytes('MESSAGE_SIZE_LIMIT', 1024, 1024 ** 3),
    maxRecipients: count('MAX_RECIPIENTS', 1, 100_000),
    memoryLimit: '',
  };
}

/** `NAME.NS.svc.CLUSTER_DOMAIN`: what pods in any namespace use to reach a Service of ours. */
export function serviceHost(settings: Settings, service: string): string {
  return `${service}.${settings.namespace}.svc.${settings.clusterDomain}`;
}

/** The four DNS names a Service answers to inside the cluster, shortest first. */
export function serviceDnsNames(settings: Settings, service: string): string[] {
  const ns = settings.namespace;
  return [service, `${service}.${ns}`, `${service}.${ns}.svc`, `${service}.${ns}.svc.${settings.clusterDomain}`];
}

/** Mail-server certificate SANs (DESIGN §2), deterministic order. */
export function mailserverSans(settings: Settings): string[] {
  const sans = [
    ...serviceDnsNames(settings, settings.names.smtpService),
    ...serviceDnsNames(settings, settings.names.imapService),
    'localhost',
    '127.0.0.1',
    ...settings.extraSans,
  ];
  return [...new Set(sans)];
}

export function mailAddress(settings: Settings, localPart: string): string {
  return `${localPart}@${settings.mailDomain}`;
}

/** What the injected pod learns about the mail server; the webhook and `demomail inject` share it. */
export interface InjectionSettings {
  /** Image of the init container (our own). */
  image: string;
  imagePullPolicy: string;
  /** PEM of the mail CA (one or more CERTIFICATE blocks: old + new during a rollover). */
  caPem: string;
  smtpHost: string;
  smtpPort: number;
  imapHost: string;
  imapPort: number;
  mailDomain: string;
  /** Namespaces whose pods are never injected, even if a request reaches us. */
  excludedNamespaces: string[];
  secretNames: {
    smtp: string;
    imap: string;
    imap2: string;
    mailserverConfig: string;
  };
}

export function injectionSettings(settings: Settings, caPem: string): InjectionSettings {
  return {
    image: settings.image,
    imagePullPolicy: settings.imagePullPolicy,
    caPem,
    smtpHost: serviceHost(settings, settings.names.smtpService),
    smtpPort: SMTPS_PORT,
    imapHost: serviceHost(settings, settings.names.imapService),
    imapPort: IMAPS_PORT,
    mailDomain: settings.mailDomain,
    excludedNamespaces: [settings.namespace, 'kube-system'],
    secretNames: {
      smtp: settings.names.smtpSecret,
      imap: settings.names.imapSecret,
      imap2: settings.names.imap2Secret,
      mailserverConfig: settings.names.mailserverConfig,
    },
  };
}

/**
 * Settings from `DEMOMAIL_<KEY>` environment variables over `base` (e.g. a --config file).
 * In the cluster the pods get the ConfigMap through `envFrom` with `prefix: DEMOMAIL_`, so one
 * spelling serves both, and generic names such as IMAGE never collide with a container's own env.
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv, base: Readonly<Record<string, string>> = {}): Settings {
  const raw: Record<string, string | undefined> = { ...base };
  for (const key of Object.keys(DEFAULTS)) {
    const value = env[`DEMOMAIL_${key}`];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  return settingsFrom(raw);
}
