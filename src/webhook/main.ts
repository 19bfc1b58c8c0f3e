// `demomail webhook`: process concerns only (logger from env, signals, drain delay); everything
// else is in server.ts.
import type { DestinationStream, Logger } from 'pino';
import type { Settings } from '../config.js';
import { createLogger, logLevelFrom } from './logger.js';
import { createWebhookServer } from './server.js';

export interface WebhookOptions {
  certFile: string;
  keyFile: string;
  caFile: string;
  port: number;
  host: string;
  settings: Settings;
  /** Seconds between "not ready" and closing on SIGTERM; default DEMOMAIL_DRAIN_SECONDS or 5. */
  drainSeconds?: number;
  /** Where JSON logs go (default stdout). */
  logDestination?: DestinationStream;
}

export const DEFAULT_DRAIN_SECONDS = 5;

/** DEMOMAIL_DRAIN_SECONDS (non-negative number, fractions allowed) or the default. */
export function drainSecondsFrom(env: NodeJS.ProcessEnv): number {
  const raw = (env['DEMOMAIL_DRAIN_SECONDS'] ?? '').trim();
  if (raw === '') return DEFAULT_DRAIN_SECONDS;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`DEMOMAIL_DRAIN_SECONDS="${raw}" must be a number of seconds >= 0 (e.g. 5)`);
  }
  return value;
}

/** Starts the HTTPS server, installs SIGTERM/SIGINT handling (stop ready, drain, exit 0); resolves when closed. */
export async function runWebhook(opts: WebhookOptions): Promise<void> {
  const { level, warning } = logLevelFrom(process.env);
  const logger: Logger = createLogger({ level, ...(opts.logDestination ? { destination: opts.logDestination } : {}) });
  if (warning) logger.warn(warning);
  const drainMs = (opts.drainSeconds ?? drainSecondsFrom(process.env)) * 1000;

  const server = await createWebhookServer({
    certFile: opts.certFile,
    keyFile: opts.keyFile,
    caFile: opts.caFile,
    settings: opts.settings,
    logger,
  });
  const address = await server.listen({ port: opts.port, host: opts.host });
  logger.info({ address: address.address, port: address.port, ready: server.state.readiness() }, 'webhook listening');

  await new Promise<void>((resolve, reject) => {
    const secondSignal = new AbortController();
    let draining = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (draining) {
        secondSignal.abort();
        return;
      }
      draining = true;
      logger.info({ signal }, 'signal received, shutting down');
      server
        .drainAndClose(drainMs, { signal: secondSignal.signal })
        .then(resolve, reject)
        .finally(() => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
}
