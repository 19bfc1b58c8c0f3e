// POST /mutate: decode, decide (review.ts), encode; a review seen before but for its uid is answered
// from answer-cache.ts. Errors are thrown, never answered here: the server's one error handler maps
// them to status codes.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { parseJsonBody } from './json-body.js';
import type { AdmissionGate } from './admission-gate.js';
import type { WebhookMetrics } from './metrics.js';
import { AnswerCache, reviewKey } from './answer-cache.js';
import { admissionAnswer, admissionDecision, answerBytes, parseAdmissionReview, type AdmissionAnswer } from './review.js';
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
  // The text itself: the route looks it up in the answer cache before parsing it.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
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

  const answers = new AnswerCache<AdmissionAnswer>();
  // The pod's line carries only fixed primitive fields (admissionAnswer: namespace, name, decision, counts,
  // reason), none of which a redaction path names, so pino's redaction (which runs over every field of
  // every line, ~4 % of a repeat's CPU) is skipped for it. Every other line keeps the redaction.
  const podLog = app.log.child({}, { redact: [] });
  app.post('/mutate', async (request, reply) => {
    // A POST without a body (and without a content type) reaches here with none: the envelope check says what is missing.
    const text = typeof request.body === 'string' ? request.body : undefined;
    const key = text === undefined ? undefined : reviewKey(text);
    let answer = key && answers.get(key, state.injection);
    if (key && answer) {
      request.admissionUid = key.uid;
      metrics.answerCacheHits.inc();
    } else {
      const review = parseAdmissionReview(text === undefined ? request.body : parseJsonBody(text));
      request.admissionUid = review.uid;
      answer = admissionAnswer(review, admissionDecision(review, state.injection, state.caLoaded));
      if (key?.uid === review.uid) answers.set(key, state.injection, answer);
    }
    const uid = request.admissionUid;
    if (answer.decision === 'patch') metrics.injected.inc();
    else if (answer.decision === 'allow') metrics.skipped.inc();
    else metrics.denied.inc({ code: String(answer.code) });
    // One line per pod, its subject as plain fields (a child logger per request costs more than the line).
    const { level, fields, message } = answer;
    request.admissionLog = () => podLog[level]({ reqId: request.id, uid, ...fields }, message);
    // Already JSON bytes: fastify sends a Buffer as is.
    return reply.type('application/json; charset=utf-8').send(answerBytes(uid, answer.tail));
  });
};
