// Assembles the webhook: fastify over HTTPS, the plugins, the one error handler, hot reload of the
// mounted certificate/CA, and the drain used on SIGTERM. main.ts adds only process concerns (signals).
import { STATUS_CODES } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Settings } from '../config.js';
import { createCertificateAuthority, createServerCertificate } from '../pki/certificates.js';
import { admissionPlugin } from './admission-plugin.js';
import { errorReply } from './errors.js';
import { healthPlugin } from './health-plugin.js';
import { createWebhookMetrics, metricsPlugin, type WebhookMetrics } from './metrics.js';
import { MaterialLoader, directoriesToWatch, watchDirectories, type DirectoryWatch, type MaterialFiles, type ReloadReport } from './reloader.js';
import { WebhookState } from './state.js';
import { TLS_OPTIONS, type ServingMaterial } from './tls-material.js';
import { AdmissionGate, DEFAULT_LIMITS, type AdmissionLimits } from './admission-gate.js';

/** 7 MiB: above the API server's own request limit (3 MiB objects, base64 overhead aside). */
export const BODY_LIMIT = 7 * 1024 * 1024;
/**
 * The API server gives up after the webhook's timeoutSeconds (5 here): a request whose headers or body
 * are still trickling in after that is a stuck or hostile client. Node checks these timeouts only every
 * connectionsCheckingInterval, hence 1 s instead of its default 30 s.
 */
export const HEADERS_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 6_000;
const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

export interface WebhookServerOptions extends MaterialFiles {
  settings: Settings;
  logger: Logger;
  /** Quiet time after a directory event before re-reading the files. */
  debounceMs?: number;
  /** Re-read the files this often even without events (a missed event, a directory that appears later). */
  pollMs?: number;
  /** Default process metrics (prom-client collectDefaultMetrics); off in the benchmark's baseline only. */
  defaultMetrics?: boolean;
  /** Caps on admissions in flight and request bytes held (DEFAULT_LIMITS). */
  limits?: Partial<Omit<AdmissionLimits, 'bodyLimit'>>;
}

export interface WebhookServer {
  app: FastifyInstance<HttpsServer>;
  state: WebhookState;
  metrics: WebhookMetrics;
  /** Re-reads the mounted files now and applies what changed (the watcher calls this too). */
  reload(): Promise<ReloadReport>;
  listen(options: { port: number; host: string }): Promise<AddressInfo>;
  /** Not ready at once, keep serving for `drainMs` (endpoints update), then close; responses say Connection: close. */
  drainAndClose(drainMs: number, options?: { signal?: AbortSignal }): Promise<void>;
}

export async function createWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { logger, settings } = options;
  const state = new WebhookState(settings);
  const metrics = createWebhookMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  const loader = new MaterialLoader({ certFile: options.certFile, keyFile: options.keyFile, caFile: options.caFile });

  const first = await loader.load();
  // Without a serving certificate there is nothing to listen with, yet the kubelet's probes need an
  // answer (/livez 200, /readyz 503) while the Secret is being created: serve a throwaway
  // self-signed certificate until the real one appears. Probes do not verify certificates.
  const initial: Pick<ServingMaterial, 'certPem' | 'keyPem'> =
    first.serving.status === 'loaded' ? first.serving.material : placeholderServingMaterial();

  const app = Fastify({
    // https.createServer takes the http.Server options too (headersTimeout, connectionsCheckingInterval).
    https: { cert: initial.certPem, key: initial.keyPem, ...TLS_OPTIONS, headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS } as object,
    bodyLimit: BODY_LIMIT,
    requestTimeout: REQUEST_TIMEOUT_MS,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    loggerInstance: logger,
    // One line per admission from the route (with uid/namespace/name) beats two per probe.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance<HttpsServer>;

  let reloading: Promise<ReloadReport> | undefined;
  let reloadAgain = false;

  const apply = (report: ReloadReport): void => {
    const { serving, ca } = report;
    if (serving.status === 'loaded') {
      // setSecureContext resets minVersion and ciphers unless passed again: pass them every time.
      app.server.setSecureContext({ cert: serving.material.certPem, key: serving.material.keyPem, ...TLS_OPTIONS });
      const previous = state.serving?.serialNumber;
      state.setServing(serving.material);
      metrics.reloads.inc({ material: 'serving', result: 'success' });
      metrics.servingNotAfter.set(serving.material.notAfter.getTime() / 1000);
      logger.info(
        { serial: serving.material.serialNumber, fingerprint: serving.material.fingerprint, notAfter: serving.material.notAfter.toISOString(), previousSerial: previous },
        previous ? 'serving certificate reloaded' : 'serving certificate loaded',
      );
    } else if (serving.status === 'failed') {
      if (state.serving === undefined) state.servingProblem = serving.error.message;
      if (!serving.repeated) {
        metrics.reloads.inc({ material: 'serving', result: 'failure' });
        const keep = state.serving ? `; still serving serial ${state.serving.serialNumber}` : '';
        if (serving.missing && state.serving === undefined) logger.warn(`${serving.error.message}${keep}`);
        else logger.error(`serving certificate not reloaded: ${serving.error.message}${keep}`);
      }
    }
    if (ca.status === 'loaded') {
      const previous = state.ca?.fingerprints;
      state.setCa(ca.material);
      metrics.reloads.inc({ material: 'ca', result: 'success' });
      logger.info({ fingerprints: ca.material.fingerprints, previousFingerprints: previous }, previous ? 'mail CA reloaded' : 'mail CA loaded');
    } else if (ca.status === 'failed') {
      if (state.ca === undefined) state.caProblem = ca.error.message;
      if (!ca.repeated) {
        metrics.reloads.inc({ material: 'ca', result: 'failure' });
        const keep = state.ca ? `; still injecting ${state.ca.fingerprints.join(', ')}` : '';
        if (ca.missing && state.ca === undefined) logger.warn(`${ca.error.message}${keep}`);
        else logger.error(`mail CA not reloaded: ${ca.error.message}${keep}`);
      }
    }
    metrics.ready.set(state.readiness().ready ? 1 : 0);
  };

  // Serialised: two overlapping reloads could apply an older read after a newer one.
  const reload = async (): Promise<ReloadReport> => {
    if (reloading) {
      reloadAgain = true;
      return reloading;
    }
    reloading = (async () => {
      let report: ReloadReport;
      do {
        reloadAgain = false;
        report = await loader.load();
        apply(report);
      } while (reloadAgain);
      return report;
    })().finally(() => {
      reloading = undefined;
    });
    return reloading;
  };

  apply(first);
  // A new connection per admission would cost a handshake each time: the counter shows reuse.
  app.server.on('secureConnection', () => metrics.tlsConnections.inc());

  app.setErrorHandler((error, request, reply) => {
    const answer = errorReply(error, BODY_LIMIT);
    metrics.errors.inc({ reason: answer.reason });
    const context = { uid: request.admissionUid || undefined, statusCode: answer.statusCode, reason: answer.reason, url: request.url };
    if (answer.statusCode >= 500) request.log.error({ ...context, err: error }, 'request failed');
    else request.log.warn({ ...context, message: answer.message }, 'request refused');
    reply.code(answer.statusCode).send({
      statusCode: answer.statusCode,
      error: STATUS_CODES[answer.statusCode] ?? 'Error',
      message: answer.message,
      ...(request.admissionUid ? { uid: request.admissionUid } : {}),
    });
  });

  // From the moment we drain, every response ends its connection, so keep-alive clients (the API
  // server) reconnect to another replica and do not hold close() open.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (state.draining) reply.header('connection', 'close');
    done(null, payload);
  });

  await app.register(healthPlugin, { state, metrics });
  await app.register(metricsPlugin, { metrics });
  await app.register(admissionPlugin, { state, metrics, gate: new AdmissionGate({ ...DEFAULT_LIMITS, ...options.limits, bodyLimit: BODY_LIMIT }) });

  let watcher: DirectoryWatch | undefined;
  app.addHook('onClose', async () => {
    watcher?.close();
  });

  return {
    app,
    state,
    metrics,
    reload,
    async listen({ port, host }) {
      await app.listen({ port, host });
      watcher = watchDirectories(
        directoriesToWatch(loader.files),
        () => void reload().catch((err: unknown) => logger.error({ err }, 'reloading the mounted certificate files failed')),
        {
          debounceMs: options.debounceMs ?? 200,
          pollMs: options.pollMs ?? 10_000,
        },
      );
      return app.server.address() as AddressInfo;
    },
    async drainAndClose(drainMs, { signal } = {}) {
      state.draining = true;
      metrics.ready.set(0);
      logger.info({ drainMs }, 'draining: /readyz reports 503, still answering requests');
      try {
        await sleep(drainMs, undefined, { signal });
      } catch {
        logger.info('drain cut short by a second signal');
      }
      watcher?.close();
      // Hard stop if a client holds a connection open past the budget.
      const force = setTimeout(() => app.server.closeAllConnections(), Math.max(5_000, drainMs));
      force.unref();
      await app.close();
      clearTimeout(force);
      logger.info('webhook closed');
    },
  };
}

/** A self-signed stand-in so the HTTPS port exists before the real Secret is mounted; never "ready". */
/** A throwaway self-signed pair to listen with until the mounted certificate appears (the gateway uses it too). */
export function placeholderServingMaterial(service = 'demomail-webhook'): { certPem: string; keyPem: string } {
  const ca = createCertificateAuthority({ commonName: `${service} placeholder (serving certificate not loaded)`, validityDays: 2 });
  return createServerCertificate({ ca, commonName: `${service}-placeholder`, sans: ['localhost', '127.0.0.1'], validityDays: 2 });
}
