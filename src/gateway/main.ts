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
  basicAuth?: { username: string; password: string };
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
  const http = await createGatewayHttp({ store, metrics, readiness, purgeMailboxes, ...(options.basicAuth ? { basicAuth: options.basicAuth } : {}), logger });

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
        await Promise.all(listeners.map((l) => l.close()));
        await http.close();
        deliverer.close();
      })()),
  };
}

/** `username` and `password` files of the optional Secret demomail-ui-auth, when it is mounted. */
export async function basicAuthFrom(dir: string | undefined): Promise<{ username: string; password: string } | undefined> {
  if (!dir) return undefined;
  try {
    const [username, password] = await Promise.all([readFile(join(dir, 'username'), 'utf8'), readFile(join(dir, 'password'), 'utf8')]);
    if (username.trim() === '' || password === '') return undefined;
    return { username: username.trim(), password: password.replace(/\r?\n$/, '') };
  } catch {
    return undefined;
  }
}

export interface RunGatewayOptions extends Omit<GatewayOptions, 'logger' | 'basicAuth'> {
  uiAuthDir?: string;
  logDestination?: DestinationStream;
}

/** The CLI: start, then on SIGTERM/SIGINT stop accepting, let sessions finish, exit. */
export async function runGateway(options: RunGatewayOptions): Promise<void> {
  const { level, warning } = logLevelFrom(process.env);
  const logger = createLogger({ level, service: 'demomail-gateway', ...(options.logDestination ? { destination: options.logDestination } : {}) });
  if (warning) logger.warn(warning);
  const basicAuth = await basicAuthFrom(options.uiAuthDir);
  logger.info({ viewerBasicAuth: basicAuth !== undefined }, basicAuth ? 'viewer basic auth on (Secret mounted)' : 'viewer basic auth off');
  const gateway = await startGateway({ ...options, logger, ...(basicAuth ? { basicAuth } : {}) });
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
