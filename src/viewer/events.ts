// Live routes: the page's event stream (SSE) and the wait a CI script uses ("block until a message to
// X with subject Y arrives, or time out").
import type { FastifyInstance } from 'fastify';
import type { CapturedMessage, CaptureStore, StoreEvent } from '../gateway/store.js';
import { httpError, viewOf } from './api.js';
import type { ParsedCache } from './parse.js';
import { listItem } from './present.js';

export const WAIT_DEFAULT_SECONDS = 30;
export const WAIT_MAX_SECONDS = 300;
/** An SSE comment this often keeps proxies (kubectl port-forward, an Ingress) from closing an idle stream. */
const HEARTBEAT_MS = 20_000;

/** One SSE frame for a store event; `evicted` is sent as `deleted` frames, which is what the page does with it. */
export function sseFrames(event: StoreEvent): string {
  switch (event.type) {
    case 'added':
      return `event: added\ndata: ${JSON.stringify(listItem(event.message))}\n\n`;
    case 'deleted':
      return `event: deleted\ndata: ${JSON.stringify({ id: event.id })}\n\n`;
    case 'evicted':
      return event.ids.map((id) => `event: deleted\ndata: ${JSON.stringify({ id })}\n\n`).join('');
    case 'purged':
      return 'event: purged\ndata: {}\n\n';
    case 'summarized':
      return ''; // the page got the whole summary with `added` (the stream waits for it)
  }
}

export interface WaitQuery {
  to?: string;
  subject?: string;
  query?: string;
  mailbox?: string;
  since?: string;
  timeout?: string;
}

/** The store search equivalent to a wait query (`to:"x" subject:"y" …`). */
export function waitSearch(q: WaitQuery): string {
  const quoted = (field: string, value: string | undefined): string => {
    if (!value) return '';
    if (value.includes('"')) throw httpError(400, `${field} cannot contain a double quote`);
    return `${field}:"${value}"`;
  };
  return [quoted('to', q.to), quoted('subject', q.subject), q.query ?? ''].filter(Boolean).join(' ');
}

export async function liveRoutes(app: FastifyInstance, { store, cache }: { store: CaptureStore; cache: ParsedCache }): Promise<void> {
  // Open streams and pending waits would hold app.close() (the gateway's shutdown) for as long as
  // they last: end them first.
  const streams = new Set<() => void>();
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    for (const end of streams) end();
  });

  app.get('/api/v1/events', (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    // `retry`: the browser reconnects after 1 s when the stream breaks (a gateway restart).
    res.write('retry: 1000\n\nevent: hello\ndata: {}\n\n');
    // Frames go out in the store's order; an `added` one waits until its summary is complete (at once
    // for most messages, a few ms of mailparser for the rest), so the page never shows a partial one.
    let queue = Promise.resolve();
    const onEvent = (event: StoreEvent) => {
      if (event.type === 'summarized') return;
      const ready = event.type === 'added' ? store.summarized(event.message) : undefined;
      queue = queue
        .then(() => ready)
        .then(() => {
          if (!res.writableEnded) res.write(sseFrames(event));
        })
        .catch(() => {}); // a stream that broke mid-write is ended by its 'close'; the chain must not reject
    };
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    const end = () => {
      clearInterval(heartbeat);
      store.events.off('event', onEvent);
      streams.delete(end);
      res.end();
    };
    store.events.on('event', onEvent);
    streams.add(end);
    res.on('close', end); // the response's close: the request's fires as soon as its (empty) body is read
  });

  app.get<{ Querystring: WaitQuery }>('/api/v1/wait', async (request, reply) => {
    const q = request.query;
    const search = waitSearch(q);
    const seconds = q.timeout === undefined || q.timeout === '' ? WAIT_DEFAULT_SECONDS : Number(q.timeout);
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > WAIT_MAX_SECONDS) throw httpError(400, `timeout must be 0–${WAIT_MAX_SECONDS} seconds, got ${JSON.stringify(q.timeout)}`);
    const since = q.since ? Date.parse(q.since) : undefined;
    if (since !== undefined && Number.isNaN(since)) throw httpError(400, `since must be an ISO 8601 time, got ${JSON.stringify(q.since)}`);
    const newestMatch = (): CapturedMessage | undefined => {
      const [newest] = store.list({ search, ...(q.mailbox ? { mailbox: q.mailbox } : {}), limit: 1 }).messages;
      return newest && (since === undefined || Date.parse(newest.receivedAt) >= since) ? newest : undefined;
    };
    const found =
      newestMatch() ??
      (await new Promise<CapturedMessage | undefined>((done) => {
        const finish = (message: CapturedMessage | undefined) => {
          clearTimeout(timer);
          streams.delete(onClose);
          store.events.off('event', onEvent);
          reply.raw.off('close', onClose);
          done(message);
        };
        const onEvent = (event: StoreEvent) => {
          // `summarized`: a message mailparser had to read may match by its body text only now.
          if (event.type !== 'added' && event.type !== 'summarized') return;
          const match = newestMatch();
          if (match?.id === event.message.id) finish(match);
        };
        const onClose = () => finish(undefined);
        const timer = setTimeout(() => finish(undefined), seconds * 1000);
        store.events.on('event', onEvent);
        streams.add(onClose);
        reply.raw.on('close', onClose);
      }));
    if (!found && closing) throw httpError(503, 'the gateway is shutting down');
    if (!found) {
      reply.code(408);
      return { statusCode: 408, error: 'Request Timeout', message: `no message matched ${JSON.stringify(search || '(anything)')} within ${seconds} s` };
    }
    return viewOf(cache, found, store);
  });
}
