// Every failure of an HTTP request ends in one place: `errorReply` decides the status code and the
// message the caller sees (the API server shows it to kubectl users verbatim), the error handler
// in server.ts only sends it.

/** A request we refuse with a 4xx status; the message names what was wrong and what to send instead. */
export class WebhookRequestError extends Error {
  override name = 'WebhookRequestError';
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ErrorReply {
  statusCode: number;
  /** Stable machine-readable reason, also the `reason` label of the errors metric. */
  reason: string;
  message: string;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  503: 'unavailable',
};

/**
 * Maps any error thrown while serving a request to the reply. Client errors keep their status and get
 * a message that says how to fix the request; anything else is our bug and becomes a 500 whose
 * message leaks nothing about the request body.
 */
export function errorReply(err: unknown, bodyLimit: number): ErrorReply {
  const error = (err ?? {}) as { statusCode?: unknown; code?: unknown; message?: unknown };
  const code = typeof error.code === 'string' ? error.code : '';
  const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (err instanceof WebhookRequestError) {
    return { statusCode: err.statusCode, reason: REASONS[err.statusCode] ?? `http_${err.statusCode}`, message: err.message };
  }
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        statusCode: 413,
        reason: 'payload_too_large',
        message: `request body is larger than the webhook's limit of ${bodyLimit} bytes; the Kubernetes API server never sends objects this large`,
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        statusCode: 415,
        reason: 'unsupported_media_type',
        message: 'POST /mutate accepts only Content-Type: application/json (an admission.k8s.io/v1 AdmissionReview)',
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { statusCode: 400, reason: 'bad_request', message: 'request body is empty; send an admission.k8s.io/v1 AdmissionReview' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { statusCode: 400, reason: 'bad_request', message: 'request body size does not match its Content-Length header' };
  }
  if (status >= 400 && status < 500) {
    const message = typeof error.message === 'string' && error.message !== '' ? error.message : 'bad request';
    return { statusCode: status, reason: REASONS[status] ?? `http_${status}`, message };
  }
  return {
    statusCode: 500,
    reason: 'internal',
    message: 'internal error in the demomail webhook; see its logs (kubectl -n demomail logs deploy/demomail-webhook)',
  };
}
