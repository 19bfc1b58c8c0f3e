// `demomail gateway`: assembles the SMTP listeners, the accept path, the capture store, the HTTP
// server and the certificate hot reload. `startGateway` is the API tests (and the viewer's browser
// tests, the demo, the benchmark) use; `runGateway` adds process concerns (signals, exit).
//
// Stable test API — keep it backward compatible:
//   const gw = await startGateway({ settings, host: '127.0.0.1', ports: { smtp: 0, submission: 0, smtps: 0, http: 0 },
//     greenmail: { host: '127.0.0.1', smtpPort, apiPort }, accounts, tls: { certFile, keyFile } });
//   gw.ports.{smtp,submission,smtps,http}; gw.store (CaptureStore); await gw.close();
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { DestinationStream, Logger } from 'pino';
import { serviceHost, type Settings } from '../config.js';
import { createLogger, logLevelFrom } from '../webhook/logger.js';
import { ServingMaterialLoader, directoriesToWatch, watchDirectories, type DirectoryWatch } from '../webhook/reloader.js';
import { placeholderServingMaterial } from '../webhook/server.js';
import { AcceptPath } from './accept.js';
import type { Account } from './accounts.js';
import { greenmailDeliverer } from './delivery.js';
import { createGatewayHttp, type Readiness } from './http.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { DEFAULT_SMTP_LIMITS, LISTENERS, createSmtpListener, type ListenerName, type SmtpLimits, type SmtpListener } from './smtp.js';
import { CaptureStore } from './store.js';
import type { Credentials, ViewerAuth } from '../viewer/plugin.js';


export interface GatewayOptions {
  settings: Settings;
  /** Listen address of every listener (0.0.0.0 in the pod, 127.0.0.1 in tests). */
  host: string;
  /** 0 = a free port (tests). */
  ports: { smtp: number; submission: number; smtps: number; http: number };
  greenmail: { host: string; smtpPort: number; apiPort: number };
  accounts: Account[];
  /** Mounted serving certificate and key (watched: a kubelet `..data` swap is picked up). */
  tls: { certFile: string; keyFile: string };
  /** Fixed viewer credentials (tests); in the pod `uiAuthDir` is used instead. */
  basicAuth?: Credentials;
  /**
   * The mounted optional Secret demomail-ui-auth (`username`, `password`), re-read on every change
   * (and every `reloadPollMs`): creating, changing or deleting the Secret takes effect without a restart.
   */
  uiAuthDir?: string;
  logger?: Logger;
  limits?: Partial<SmtpLimits>;
  /** Certificate re-read interval without a directory event; default 60 s. */
  reloadPollMs?: number;
  reloadDebounceMs?: number;
  defaultMetrics?: boolean;
}

export interface RunningGateway {
  ports: { smtp: number; submission: number; smtps: number; http: number };
  store: CaptureStore;
  metrics: GatewayMetrics;
  /** Re-reads the certificate files now (the watcher does this on its own). */
  reloadTls(): Promise<void>;
  readiness(): Promise<Readiness>;
  /** Not ready, stop accepting, let sessions finish (≤ closeTimeout), close HTTP and delivery. */
  close(): Promise<void>;
}

async function greenmailReady(apiBase: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${apiBase}/api/service/readiness`, { signal: AbortSignal.timeout(1500) });
    return res.ok ? undefined : `GreenMail readiness answered HTTP ${res.status}`;
  } catch (err) {
    return `GreenMail API not reachable (${(err as Error).message})`;
  }
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const { settings } = options;
  const logger = options.logger ?? createLogger({ level: 'silent' });
  const store = new CaptureStore({ maxMessages: settings.gateway.storeMaxMessages, maxBytes: settings.gateway.storeMaxBytes });
  const metrics = createGatewayMetrics(store, { defaultMetrics: options.defaultMetrics ?? true });
  const deliverer = greenmailDeliverer({ host: options.greenmail.host, port: options.greenmail.smtpPort, nullSender: `MAILER-DAEMON@${settings.gateway.simulateDomain}` });
  const hostname = serviceHost(settings, settings.names.smtpService);
  const accept = new AcceptPath({
    store,
    deliver: deliverer.deliver,
    stream: deliverer.stream,
    routing: { mailDomain: settings.mailDomain, simulateDomain: settings.gateway.simulateDomain, bounceMailbox: settings.gateway.bounceMailbox, verpLocalpart: settings.gateway.verpLocalpart },
    metrics,
    logger,
    reportingMta: hostname,
  });
  const limits: SmtpLimits = {
    ...DEFAULT_SMTP_LIMITS,
    messageSizeLimit: settings.gateway.messageSizeLimit,
    maxRecipients: settings.gateway.maxRecipients,
    ...options.limits,
  };

  const loader = new ServingMaterialLoader(options.tls);
  const first = await loader.load();
  let tlsLoaded = first.status === 'loaded';
  let tlsProblem = first.status === 'failed' ? first.error.message : undefined;
  if (first.status === 'failed') logger.warn(`${first.error.message}; listening with a placeholder certificate until it appears`);
  const initial = first.status === 'loaded' ? first.material : placeholderServingMaterial('demomail-gateway');
  if (first.status === 'loaded') {
    metrics.tlsReloads.inc({ result: 'success' });
    logger.info({ serial: first.material.serialNumber, fingerprint: first.material.fingerprint, notAfter: first.material.notAfter.toISOString() }, 'serving certificate loaded');
  }

  const listeners: SmtpListener[] = (Object.keys(LISTENERS) as ListenerName[]).map((name) =>
    createSmtpListener({ name, hostname, tls: initial, accounts: options.accounts, accept, limits, metrics, logger }),
  );
  let draining = false;
  const apiBase = `http://${options.greenmail.host}:${options.greenmail.apiPort}`;
  const readiness = async (): Promise<Readiness> => {
    const reasons: string[] = [];
    if (draining) reasons.push('shutting down');
    if (!tlsLoaded) reasons.push(tlsProblem ?? 'serving certificate not loaded');
    const greenmail = await greenmailReady(apiBase);
    if (greenmail) reasons.push(greenmail);
    return { ready: reasons.length === 0, reasons };
  };
  const purgeMailboxes = async (): Promise<void> => {
    const res = await fetch(`${apiBase}/api/mail/purge`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`GreenMail purge answered HTTP ${res.status}`);
  };
  const uiAuthDir = options.uiAuthDir;
  let viewerAuth: ViewerAuth = uiAuthDir ? await readViewerAuth(uiAuthDir) : options.basicAuth ? { kind: 'on', credentials: options.basicAuth } : { kind: 'off' };
  const logViewerAuth = (auth: ViewerAuth, change: boolean): void => {
    const verb = change ? 'changed' : 'at start';
    if (auth.kind === 'broken') logger.error(`viewer basic auth ${verb}: ${auth.reason}; every viewer request is refused (503) until it is fixed`);
    else logger.info({ viewerBasicAuth: auth.kind === 'on' }, `viewer basic auth ${verb}: ${auth.kind === 'on' ? 'on (Secret mounted)' : 'off (no Secret)'}`);
  };
  if (uiAuthDir) logViewerAuth(viewerAuth, false);
  const http = await createGatewayHttp({ store, metrics, readiness, purgeMailboxes, ...(uiAuthDir || options.basicAuth ? { basicAuth: () => viewerAuth } : {}), logger });
  let authReading: Promise<void> = Promise.resolve();
  const reloadViewerAuth = (): Promise<void> => {
    if (!uiAuthDir) return authReading;
    authReading = authReading.then(async () => {
      const next = await readViewerAuth(uiAuthDir);
      if (sameViewerAuth(next, viewerAuth)) return;
      viewerAuth = next;
      logViewerAuth(next, true);
    });
    return authReading;
  };
  const authWatch: DirectoryWatch | undefined = uiAuthDir
    ? watchDirectories([uiAuthDir], () => void reloadViewerAuth(), { debounceMs: options.reloadDebounceMs ?? 200, pollMs: options.reloadPollMs ?? 60_000 })
    : undefined;

  let reloading: Promise<void> = Promise.resolve();
  const reloadTls = (): Promise<void> => {
    // Serialised: an older read must never be applied after a newer one.
    reloading = reloading.then(async () => {
      const outcome = await loader.load();
      if (outcome.status === 'loaded') {
        for (const listener of listeners) listener.setTls(outcome.material);
        const previous = tlsLoaded;
        tlsLoaded = true;
        tlsProblem = undefined;
        metrics.tlsReloads.inc({ result: 'success' });
        logger.info({ serial: outcome.material.serialNumber, fingerprint: outcome.material.fingerprint, notAfter: outcome.material.notAfter.toISOString() }, previous ? 'serving certificate reloaded' : 'serving certificate loaded');
      } else if (outcome.status === 'failed' && !outcome.repeated) {
        if (!tlsLoaded) tlsProblem = outcome.error.message;
        metrics.tlsReloads.inc({ result: 'failure' });
        logger.error(`serving certificate not reloaded: ${outcome.error.message}${tlsLoaded ? '; the listeners keep the previous one' : ''}`);
      }
    });
    return reloading;
  };
  const watch: DirectoryWatch = watchDirectories(directoriesToWatch(options.tls), () => void reloadTls(), {
    debounceMs: options.reloadDebounceMs ?? 200,
    pollMs: options.reloadPollMs ?? 60_000,
  });

  const ports = { smtp: 0, submission: 0, smtps: 0, http: 0 };
  try {
    for (const listener of listeners) ports[listener.name] = await listener.listen(options.ports[listener.name], options.host);
    await http.listen({ port: options.ports.http, host: options.host });
    ports.http = (http.server.address() as AddressInfo).port;
  } catch (err) {
    watch.close();
    authWatch?.close();
    await Promise.all(listeners.map((l) => l.close()));
    await http.close();
    deliverer.close();
    throw err;
  }
  logger.info({ host: options.host, ports, greenmail: options.greenmail, accounts: options.accounts.map((a) => a.username) }, 'gateway listening');

  let closing: Promise<void> | undefined;
  return {
    ports,
    store,
    metrics,
    reloadTls,
    readiness,
    close: () =>
      (closing ??= (async () => {
        draining = true;
        watch.close();
        authWatch?.close();
        await Promise.all(listeners.map((l) => l.close()));
        await http.close();
        deliverer.close();
      })()),
  };
}

/**
 * The viewer's basic auth from the mounted optional Secret demomail-ui-auth: `off` when neither
 * `username` nor `password` is there (the Secret does not exist: the kubelet mounts an empty
 * directory), `on` with both, `broken` (fail closed) when the Secret is there but unusable.
 */
export async function readViewerAuth(dir: string): Promise<ViewerAuth> {
  const read = async (key: string): Promise<string | undefined> => {
    try {
      return await readFile(join(dir, key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`${join(dir, key)} cannot be read (${(err as Error).message})`);
    }
  };
  try {
    const [username, password] = await Promise.all([read('username'), read('password')]);
    if (username === undefined && password === undefined) return { kind: 'off' };
    const fix = 'give Secret demomail-ui-auth a non-empty `username` and `password` (kubectl create secret generic demomail-ui-auth --from-literal=username=… --from-literal=password=…), or delete it to turn basic auth off';
    if (username === undefined || username.trim() === '') return { kind: 'broken', reason: `the Secret has no username; ${fix}` };
    const pass = password?.replace(/\r?\n$/, '');
    if (pass === undefined || pass === '') return { kind: 'broken', reason: `the Secret has no password; ${fix}` };
    return { kind: 'on', credentials: { username: username.trim(), password: pass } };
  } catch (err) {
    return { kind: 'broken', reason: (err as Error).message };
  }
}

function sameViewerAuth(a: ViewerAuth, b: ViewerAuth): boolean {
  if (a.kind === 'on' && b.kind === 'on') return a.credentials.username === b.credentials.username && a.credentials.password === b.credentials.password;
  if (a.kind === 'broken' && b.kind === 'broken') return a.reason === b.reason;
  return a.kind === b.kind;
}

export interface RunGatewayOptions extends Omit<GatewayOptions, 'logger' | 'basicAuth'> {
  logDestination?: DestinationStream;
}

/** The CLI: start, then on SIGTERM/SIGINT stop accepting, let sessions finish, exit. */
export async function runGateway(options: RunGatewayOptions): Promise<void> {
  const { level, warning } = logLevelFrom(process.env);
  const logger = createLogger({ level, service: 'demomail-gateway', ...(options.logDestination ? { destination: options.logDestination } : {}) });
  if (warning) logger.warn(warning);
  const gateway = await startGateway({ ...options, logger });
  await new Promise<void>((resolve, reject) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      logger.info({ signal }, 'signal received: no new sessions, finishing the running ones');
      gateway.close().then(resolve, reject);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  logger.info('gateway stopped');
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
}
