// Prometheus metrics of the gateway, on a registry of its own (several gateways in one test process
// must not collide). Store size and bytes are read from the store at scrape time.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CaptureStore } from './store.js';

export interface GatewayMetrics {
  registry: Registry;
  /** Messages answered 250, by listener (smtp, submission, smtps) and generated ones (generated). */
  accepted: Counter<'origin'>;
  /** Messages refused, by reason (size, delivery, auth, recipients, tls, ...). */
  refused: Counter<'reason'>;
  /** Copies delivered into GreenMail, by routing rule. */
  deliveries: Counter<'rule'>;
  /** Simulated outcomes generated (dsn-hard, dsn-soft, auto-reply) and failed ones. */
  simulated: Counter<'kind' | 'result'>;
  authFailures: Counter;
  tlsReloads: Counter<'result'>;
  ready: Gauge;
}

export function createGatewayMetrics(store: CaptureStore, options: { defaultMetrics?: boolean } = {}): GatewayMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({ name: 'demomail_gateway_store_messages', help: 'Messages in the capture store', registers, collect() { this.set(store.stats().messages); } });
  new Gauge({ name: 'demomail_gateway_store_bytes', help: 'Bytes accounted to the capture store, messages at their raw size (what STORE_MAX_BYTES bounds)', registers, collect() { this.set(store.stats().bytes); } });
  new Gauge({ name: 'demomail_gateway_store_held_bytes', help: 'Bytes the capture store actually holds: the same accounting with messages compressed at rest', registers, collect() { this.set(store.stats().heldBytes); } });
  new Gauge({ name: 'demomail_gateway_store_evictions', help: 'Messages evicted from the capture store (oldest first) since start', registers, collect() { this.set(store.stats().evictions); } });
  return {
    registry,
    accepted: new Counter({ name: 'demomail_gateway_messages_accepted_total', help: 'Messages stored and delivered, by origin (listener or generated)', labelNames: ['origin'], registers }),
    refused: new Counter({ name: 'demomail_gateway_messages_refused_total', help: 'Messages or sessions refused, by reason', labelNames: ['reason'], registers }),
    deliveries: new Counter({ name: 'demomail_gateway_deliveries_total', help: 'Copies delivered into GreenMail, by routing rule', labelNames: ['rule'], registers }),
    simulated: new Counter({ name: 'demomail_gateway_simulated_total', help: 'Simulated outcomes (DSN, auto-reply) by kind and result', labelNames: ['kind', 'result'], registers }),
    authFailures: new Counter({ name: 'demomail_gateway_auth_failures_total', help: 'SMTP AUTH attempts refused (535)', registers }),
    tlsReloads: new Counter({ name: 'demomail_gateway_tls_reloads_total', help: 'Reloads of the serving certificate, by result', labelNames: ['result'], registers }),
    ready: new Gauge({ name: 'demomail_gateway_ready', help: '1 when /readyz answers 200', registers }),
  };
}
