// Everything GreenMail-specific: its ports, its command line, how the kubelet turns the Deployment's env
// into that command line. Pure: the bootstrap builds the Deployment from it and the local launcher
// (scripts/lib/greenmail.ts) rebuilds the exact same java invocation from the rendered objects.
import type { Settings } from '../config.js';

/**
 * GreenMail's listeners, each set on its own (`-Dgreenmail.<proto>.hostname/port`): SMTP and the API on
 * loopback (only the gateway beside it talks to them), IMAP/IMAPS on every interface. No SMTPS, no POP3.
 */
export const GREENMAIL_PORTS = Object.freeze({ smtp: 3025, imap: 3143, imaps: 3993, api: 8080 });
export type GreenmailProtocol = keyof typeof GREENMAIL_PORTS;
export const GREENMAIL_BIND: Readonly<Record<GreenmailProtocol, string>> = Object.freeze({ smtp: '127.0.0.1', imap: '0.0.0.0', imaps: '0.0.0.0', api: '127.0.0.1' });
export const READINESS_PATH = '/api/service/readiness';
/** Where the keystore Secret is mounted in the GreenMail container. */
export const KEYSTORE_DIR = '/tls';
export const KEYSTORE_KEY = 'keystore.p12';
export const KEYSTORE_PASSWORD_KEY = 'keystore-password';
/** Jar location inside the greenmail/standalone image (WORKDIR /home/greenmail). */
export const IMAGE_JAR = '/home/greenmail/greenmail-standalone.jar';
/**
 * The image's entrypoint (run_greenmail.sh) first echoes `java $JAVA_OPTS $GREENMAIL_OPTS …` into the
 * pod log — expanded, i.e. with every password in it. We run the same `exec java …` without the echo.
 * Unquoted on purpose, like the image: the shell word-splits the options (hence no spaces in values).
 */
export const CONTAINER_COMMAND = ['/bin/sh', '-c', `exec java $JAVA_OPTS $GREENMAIL_OPTS -jar ${IMAGE_JAR}`];

/** Env names the Deployment declares; GREENMAIL_OPTS refers to the secret ones as `$(NAME)`. */
export const ENV = Object.freeze({
  smtpPassword: 'SMTP_PASSWORD',
  imapPassword: 'IMAP_PASSWORD',
  imap2Password: 'IMAP2_PASSWORD',
  keystorePassword: 'KEYSTORE_PASSWORD',
  greenmailOpts: 'GREENMAIL_OPTS',
  javaOpts: 'JAVA_OPTS',
});

export interface GreenmailUser {
  localPart: string;
  domain: string;
  /** Env var holding the password (a secretKeyRef). */
  passwordEnv: string;
}

export function greenmailUsers(settings: Settings): GreenmailUser[] {
  return [
    { localPart: settings.smtpUser, domain: settings.mailDomain, passwordEnv: ENV.smtpPassword },
    { localPart: settings.imapUser, domain: settings.mailDomain, passwordEnv: ENV.imapPassword },
    { localPart: settings.imap2User, domain: settings.mailDomain, passwordEnv: ENV.imap2Password },
  ];
}

/**
 * GREENMAIL_OPTS, whole (the image default carries -Dgreenmail.auth.disabled, which only its presence
 * matters for). Users are written `local:$(PASSWORD)@domain`: GreenMail 2.1.7 splits each user on
 * `[:@]` (3 parts = login, password, domain), so the full address from the Secret cannot be used as the
 * login part; with `-Dgreenmail.users.login=email` the login becomes `local@domain`, which is the
 * Secret's `username`. No -Dgreenmail.verbose: it logs the protocol dialogue, AUTH lines included.
 */
export function greenmailOpts(settings: Settings): string {
  const users = greenmailUsers(settings)
    .map((u) => `${u.localPart}:$(${u.passwordEnv})@${u.domain}`)
    .join(',');
  // Per protocol, never together with -Dgreenmail.setup.test.*: GreenMail 2.1.7 would then see the
  // same server twice ("Server 'smtp' was found at least twice") and refuse to start.
  const listeners = (Object.keys(GREENMAIL_PORTS) as GreenmailProtocol[]).flatMap((proto) => [
    `-Dgreenmail.${proto}.hostname=${GREENMAIL_BIND[proto]}`,
    `-Dgreenmail.${proto}.port=${GREENMAIL_PORTS[proto]}`,
  ]);
  const opts = [
    ...listeners,
    // Default 2 s per listener: on a busy node IMAPS (keystore, TLS setup) misses it and the JVM exits
    // ("Could not start mail server imaps…"), seen on 2 shared cores.
    '-Dgreenmail.startup.timeout=30000',
    `-Dgreenmail.users=${users}`,
    '-Dgreenmail.users.login=email',
    `-Dgreenmail.tls.keystore.file=${KEYSTORE_DIR}/${KEYSTORE_KEY}`,
    `-Dgreenmail.tls.keystore.password=$(${ENV.keystorePassword})`,
  ];
  assertShellSafe(opts, 'GREENMAIL_OPTS');
  return opts.join(' ');
}

/** JAVA_OPTS: the image's own default plus the heap cap that keeps the JVM under the memory limit. */
export function javaOpts(settings: Settings): string {
  const opts = ['-Djava.net.preferIPv4Stack=true', `-Xmx${settings.mailserverHeap}`, '-XX:+ExitOnOutOfMemoryError'];
  assertShellSafe(opts, 'JAVA_OPTS');
  return opts.join(' ');
}

/** The container's shell splits options on whitespace and globs them: neither may appear inside one. */
function assertShellSafe(opts: string[], what: string): void {
  for (const opt of opts) {
    if (/[\s*?[\]'"\\;&|<>`]/.test(opt)) {
      throw new Error(`${what}: option "${opt}" contains a space or shell character; the image runs java with the options unquoted`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The kubelet's side: env resolution and `$(VAR)` expansion.

/**
 * Kubernetes' `$(VAR)` expansion (third_party/forked/golang/expansion): `$$` is a literal `$`,
 * `$(NAME)` becomes the value when NAME is known and stays as written otherwise, an unclosed `$(` and
 * a `$` before any other character are copied unchanged.
 */
export function expandKubeletReferences(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    // `advance` = characters consumed after the `$`, as in the Go original.
    let advance = 1;
    if (rest[0] === '$') {
      out += '$';
    } else if (rest[0] === '(') {
      const close = rest.indexOf(')', 1);
      if (close === -1) {
        out += '$(';
      } else {
        const name = rest.slice(1, close);
        out += lookup(name) ?? `$(${name})`;
        advance = close + 1;
      }
    } else {
      out += `$${rest[0]}`;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

/** Secret `data` (base64) and ConfigMap `data` by object name, as rendered or read from the API. */
export interface EnvSources {
  secrets: Record<string, Record<string, string> | undefined>;
  configMaps?: Record<string, Record<string, string> | undefined>;
}

/**
 * A container's environment as the kubelet computes it: in declaration order, each `value` expanded
 * against the variables declared before it, `secretKeyRef`/`configMapKeyRef` resolved (a missing
 * non-optional reference is what the kubelet reports as CreateContainerConfigError).
 */
export function containerEnvironment(env: readonly EnvVar[], sources: EnvSources, container = 'container'): Record<string, string> {
  const resolved: Record<string, string> = {};
  for (const variable of env) {
    if (variable.valueFrom === undefined) {
      resolved[variable.name] = expandKubeletReferences(variable.value ?? '', (name) => (Object.hasOwn(resolved, name) ? resolved[name] : undefined));
      continue;
    }
    const { secretKeyRef, configMapKeyRef } = variable.valueFrom;
    if (secretKeyRef) {
      const data = sources.secrets[secretKeyRef.name];
      const encoded = data?.[secretKeyRef.key];
      if (encoded === undefined) {
        if (secretKeyRef.optional) continue;
        throw new Error(`${container}: env ${variable.name} needs key "${secretKeyRef.key}" of Secret ${secretKeyRef.name}, which is missing (the kubelet would fail with CreateContainerConfigError)`);
      }
      resolved[variable.name] = Buffer.from(encoded, 'base64').toString('utf8');
    } else if (configMapKeyRef) {
      const value = sources.configMaps?.[configMapKeyRef.name]?.[configMapKeyRef.key];
      if (value === undefined) {
        if (configMapKeyRef.optional) continue;
        throw new Error(`${container}: env ${variable.name} needs key "${configMapKeyRef.key}" of ConfigMap ${configMapKeyRef.name}, which is missing`);
      }
      resolved[variable.name] = value;
    } else {
      throw new Error(`${container}: env ${variable.name} uses a valueFrom source this resolver does not know (only secretKeyRef and configMapKeyRef)`);
    }
  }
  return resolved;
}

/** `sh -c 'exec java $JAVA_OPTS $GREENMAIL_OPTS -jar …'`: unquoted expansion = split on blanks. */
export function shellWords(value: string | undefined): string[] {
  return (value ?? '').split(/[ \t\n]+/).filter(Boolean);
}

/**
 * `-Dgreenmail.users` as GreenMail 2.1.7 reads it (PropertiesBasedGreenMailConfigurationBuilder): users
 * split on `,`, each on `[:@]`; 2 parts = login:password, 3 parts = local:password@domain, anything else
 * is rejected at startup.
 */
export function parseGreenmailUsers(value: string): { login: string; password: string; domain?: string }[] {
  return value.split(',').map((entry) => {
    const parts = entry.split(/[:@]/);
    if (parts.length === 2) return { login: parts[0] as string, password: parts[1] as string };
    if (parts.length === 3) return { login: parts[0] as string, password: parts[1] as string, domain: parts[2] as string };
    throw new Error(`-Dgreenmail.users entry "${entry.replace(/:.*/, ':…')}" is not login:pwd[@domain] (GreenMail would refuse to start)`);
  });
}
