// Prometheus metrics on a registry of our own (never prom-client's global one), so several servers in
// one process (tests, the benchmark) do not collide.
import type { FastifyPluginAsync } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WebhookMetrics {
  registry: Registry;
  /** POST /mutate requests by HTTP status code. */
  requests: Counter<'code'>;
  injected: Counter;
  skipped: Counter;
  denied: Counter<'code'>;
  /** Requests answered with an error status, by reason (bad_request, payload_too_large, internal...). */
  errors: Counter<'reason'>;
  duration: Histogram;
  /** Certificate/CA reloads by what was reloaded (serving, ca) and outcome (success, failure). */
  reloads: Counter<'material' | 'result'>;
  ready: Gauge;
  servingNotAfter: Gauge;
  /** TLS handshakes completed: with a keep-alive client (the API server) this grows far slower than requests. */
  tlsConnections: Counter;
  /** Admissions answered from the answer cache (answer-cache.ts): the same review seen before but for its uid. */
  answerCacheHits: Counter;
}

export function createWebhookMetrics(options: { defaultMetrics?: boolean } = {}): WebhookMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({ name: 'demomail_webhook_requests_total', help: 'POST /mutate requests by HTTP status code', labelNames: ['code'], registers }),
    injected: new Counter({ name: 'demomail_webhook_injected_total', help: 'Pods answered with an injection patch', registers }),
    skipped: new Counter({ name: 'demomail_webhook_skipped_total', help: 'Admission requests allowed unchanged (not a pod CREATE, opted out, already injected)', registers }),
    denied: new Counter({ name: 'demomail_webhook_denied_total', help: 'Pods denied (refused injection, or mail CA not loaded), by status code', labelNames: ['code'], registers }),
    errors: new Counter({ name: 'demomail_webhook_errors_total', help: 'Requests answered with an HTTP error, by reason', labelNames: ['reason'], registers }),
    duration: new Histogram({
      name: 'demomail_webhook_mutate_duration_seconds',
      help: 'Time to answer POST /mutate, from the first byte of the request to the end of the response',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    reloads: new Counter({ name: 'demomail_webhook_tls_reloads_total', help: 'Reloads of the serving certificate or the mail CA, by outcome', labelNames: ['material', 'result'], registers }),
    ready: new Gauge({ name: 'demomail_webhook_ready', help: '1 when /readyz answers 200', registers }),
    servingNotAfter: new Gauge({ name: 'demomail_webhook_serving_certificate_not_after_seconds', help: 'Expiry of the serving certificate in use (Unix time)', registers }),
    tlsConnections: new Counter({ name: 'demomail_webhook_tls_connections_total', help: 'TLS connections accepted (handshakes completed)', registers }),
    answerCacheHits: new Counter({
      name: 'demomail_webhook_answer_cache_hits_total',
      help: 'Admissions answered from memory: the same AdmissionReview as an earlier one but for request.uid (replicas of one template)',
      registers,
    }),
  };
}

export const metricsPlugin: FastifyPluginAsync<{ metrics: WebhookMetrics }> = async (app, { metrics }) => {
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
