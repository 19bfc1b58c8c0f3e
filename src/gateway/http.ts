// HTTP on 8025 (plain: reached through port-forward or inside the NetworkPolicy fence): health,
// Prometheus metrics, and the mail viewer (src/viewer, registered with the capture store).
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { viewerPlugin, type ViewerOptions } from '../viewer/plugin.js';
import type { GatewayMetrics } from './metrics.js';

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

export interface GatewayHttpOptions extends ViewerOptions {
  metrics: GatewayMetrics;
  readiness: () => Promise<Readiness>;
  logger: Logger;
}

export async function createGatewayHttp(options: GatewayHttpOptions): Promise<FastifyInstance> {
  const { metrics, readiness } = options;
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: 30_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;
  app.get('/livez', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const { ready, reasons } = await readiness();
    metrics.ready.set(ready ? 1 : 0);
    reply.code(ready ? 200 : 503);
    return ready ? { status: 'ready' } : { status: 'not ready', reasons };
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  await app.register(viewerPlugin, {
    store: options.store,
    purgeMailboxes: options.purgeMailboxes,
    ...(options.basicAuth ? { basicAuth: options.basicAuth } : {}),
  });
  return app;
}
