import t from 'tap';
import { WebhookRequestError, errorReply } from './errors.js';

const LIMIT = 7 * 1024 * 1024;

function fastifyError(code: string, statusCode: number): Error {
  return Object.assign(new Error('fastify says'), { code, statusCode });
}

t.test('errorReply maps errors to status, reason and a message that says what to do', async (t) => {
  const cases: Array<[string, unknown, number, string, RegExp]> = [
    ['our 400', new WebhookRequestError(400, 'request.uid is missing'), 400, 'bad_request', /request\.uid is missing/],
    ['body too large', fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), 413, 'payload_too_large', new RegExp(`limit of ${LIMIT} bytes`)],
    ['wrong media type', fastifyError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415), 415, 'unsupported_media_type', /application\/json/],
    ['empty JSON body', fastifyError('FST_ERR_CTP_EMPTY_JSON_BODY', 400), 400, 'bad_request', /empty/],
    ['content-length mismatch', fastifyError('FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400), 400, 'bad_request', /Content-Length/],
    ['other 4xx keeps its message', Object.assign(new Error('Route not found'), { statusCode: 404 }), 404, 'not_found', /Route not found/],
    ['unknown 4xx', Object.assign(new Error('teapot'), { statusCode: 418 }), 418, 'http_418', /teapot/],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'spec')"), 500, 'internal', /internal error .*logs/],
    ['a 5xx from below', Object.assign(new Error('boom'), { statusCode: 502 }), 500, 'internal', /internal error/],
    ['not even an Error', 'string thrown', 500, 'internal', /internal error/],
    ['null', null, 500, 'internal', /internal error/],
  ];
  for (const [name, error, status, reason, message] of cases) {
    const reply = errorReply(error, LIMIT);
    t.equal(reply.statusCode, status, name);
    t.equal(reply.reason, reason, name);
    t.match(reply.message, message, name);
  }
  t.notMatch(errorReply(new TypeError('secret-value-in-message'), LIMIT).message, /secret-value/, '500 messages leak nothing');
});
