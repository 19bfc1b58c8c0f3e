// POST /mutate: decode, decide (review.ts), encode. Errors are thrown, never answered here: the
// server's one error handler maps them to status codes.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { parseJsonBody } from './json-body.js';
import type { AdmissionGate } from './admission-gate.js';
import type { WebhookMetrics } from './metrics.js';
import { admissionDecision, admissionReviewJson, parseAdmissionReview, requestSubject } from './review.js';
import type { WebhookState } from './state.js';

export interface AdmissionPluginOptions {
  state: WebhookState;
  metrics: WebhookMetrics;
  gate: AdmissionGate;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** request.uid of the AdmissionReview once known, so error replies can echo it too. */
    admissionUid: string;
    /** The pod's log line, written once the answer is on its way (see onResponse). */
    admissionLog: (() => void) | undefined;
  }
}

export const admissionPlugin: FastifyPluginAsync<AdmissionPluginOptions> = async (app, { state, metrics, gate }) => {
  // Only application/json in this context: text/plain and every other type get 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.decorateRequest('admissionUid', '');
  app.decorateRequest('admissionLog', undefined);

  // Callback hooks, not async ones: an async hook costs a promise and a microtask turn per request.
  const timers = new WeakMap<FastifyRequest, () => number>();
  app.addHook('onRequest', (request, reply, done) => {
    timers.set(request, metrics.duration.startTimer());
    try {
      gate.admit(request, reply);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    timers.get(request)?.();
    // Logged after the answer is written: formatting the line and handing it to the log stream cost
    // ~0.2 ms that the API server would otherwise wait for on every pod (measured, bench/README.md).
    request.admissionLog?.();
    metrics.requests.inc({ code: String(reply.statusCode) });
    done();
  });

  app.post('/mutate', async (request, reply) => {
    const review = parseAdmissionReview(request.body);
    request.admissionUid = review.uid;
    const decision = admissionDecision(review, state.injection, state.caLoaded);
    // One line per pod, its subject as plain fields (a child logger per request costs more than the line).
    // The warnings themselves go back to the client (kubectl prints them); the line carries their count.
    switch (decision.kind) {
      case 'patch':
        metrics.injected.inc();
        request.admissionLog = () => request.log.info({ ...requestSubject(review), decision: 'inject', ops: decision.ops.length, warnings: decision.warnings.length }, 'pod injected');
        break;
      case 'allow':
        metrics.skipped.inc();
        request.admissionLog = () => request.log.debug({ ...requestSubject(review), decision: 'allow', reason: decision.reason }, 'allowed unchanged');
        break;
      case 'deny':
        metrics.denied.inc({ code: String(decision.code) });
        request.admissionLog = () => request.log.warn({ ...requestSubject(review), decision: 'deny', code: decision.code, message: decision.message }, 'pod denied');
        break;
    }
    // Already JSON: fastify sends a string with a content type as is.
    return reply.type('application/json; charset=utf-8').send(admissionReviewJson(review.uid, decision));
  });
};
