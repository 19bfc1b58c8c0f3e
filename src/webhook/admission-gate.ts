// Bounds what unauthenticated clients can make the webhook hold in memory: the admission port is
// reachable by anything that can reach the pod, and with failurePolicy: Fail both replicas down
// blocks every opted-in pod. Checked in onRequest, before a byte of the body is read: a request over
// either cap gets a fast 503 (Retry-After, Connection: close) instead of a buffer.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WebhookRequestError } from './errors.js';

export interface AdmissionLimits {
  /** Admissions in flight at once (the API server sends one at a time per pod CREATE). */
  maxConcurrent: number;
  /** Sum of the bodies being received or processed; a request without Content-Length counts as bodyLimit. */
  maxBufferedBytes: number;
  bodyLimit: number;
}

/** A CiviCRM-like pod is ~17 KiB; 32 MiB holds 4 maximal (7 MiB) requests or ~1,900 real ones at once. */
export const DEFAULT_LIMITS: Omit<AdmissionLimits, 'bodyLimit'> = { maxConcurrent: 64, maxBufferedBytes: 32 * 1024 * 1024 };

export class AdmissionGate {
  inFlight = 0;
  bufferedBytes = 0;
  constructor(readonly limits: AdmissionLimits) {}

  /** Reserves room for this request or throws a 503; the reservation ends when the response closes. */
  admit(request: FastifyRequest, reply: FastifyReply): void {
    const declared = Number(request.headers['content-length']);
    const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, this.limits.bodyLimit) : this.limits.bodyLimit;
    const full =
      this.inFlight + 1 > this.limits.maxConcurrent
        ? `${this.inFlight} admissions in flight (limit ${this.limits.maxConcurrent})`
        : this.bufferedBytes + bytes > this.limits.maxBufferedBytes
          ? `${this.bufferedBytes + bytes} bytes of request bodies would be held (limit ${this.limits.maxBufferedBytes})`
          : undefined;
    if (full) {
      reply.header('retry-after', '1').header('connection', 'close');
      throw new WebhookRequestError(503, `demomail webhook is busy: ${full}; retry (the API server and controllers do)`);
    }
    this.inFlight++;
    this.bufferedBytes += bytes;
    let released = false;
    reply.raw.once('close', () => {
      if (released) return;
      released = true;
      this.inFlight--;
      this.bufferedBytes -= bytes;
    });
  }
}
