import type { FastifyPluginAsync } from 'fastify';
import type { WebhookMetrics } from './metrics.js';
import type { WebhookState } from './state.js';

/** /livez: the process answers. /readyz: serving certificate and mail CA loaded, not draining. */
export const healthPlugin: FastifyPluginAsync<{ state: WebhookState; metrics: WebhookMetrics }> = async (app, { state, metrics }) => {
  app.get('/livez', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const { ready, reasons } = state.readiness();
    metrics.ready.set(ready ? 1 : 0);
    reply.code(ready ? 200 : 503);
    return ready ? { status: 'ready' } : { status: 'not ready', reasons };
  });
};
