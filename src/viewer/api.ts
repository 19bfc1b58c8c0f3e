// The JSON API under /api/v1/ (README "Mail viewer"): what the page shows, for scripts and CI too.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { CapturedMessage, CaptureStore } from '../gateway/store.js';
import { displayHtml, frameCsp, frameDocument } from './html.js';
import type { ParsedCache } from './parse.js';
import { bareContentId, listItem, messageView, type MessageView } from './present.js';
import { crossSiteRefusal } from './security.js';

export interface ApiOptions {
  store: CaptureStore;
  cache: ParsedCache;
  purgeMailboxes: () => Promise<void>;
}

/** An error fastify's error handler turns into `{statusCode, error, message}` with this status. */
export function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

/** `attachment; filename="a.pdf"; filename*=UTF-8''a.pdf`: the ASCII form for old clients, the exact one for the rest. */
export function contentDisposition(kind: 'attachment' | 'inline', filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

function integer(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value)) throw httpError(400, `${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The parsed view of one message; counts its remote images the way the HTML frame will block them. */
export async function viewOf(cache: ParsedCache, message: CapturedMessage, store: CaptureStore): Promise<MessageView> {
  const [parsed] = await Promise.all([cache.parsed(message), store.summarized(message)]);
  const remote = typeof parsed.html === 'string' ? displayHtml(parsed.html, { cidUrl: () => '', allowRemote: false }).remoteImagesBlocked : 0;
  return messageView(message, parsed, remote);
}

export async function apiRoutes(app: FastifyInstance, { store, cache, purgeMailboxes }: ApiOptions): Promise<void> {
  const find = (id: string): CapturedMessage => {
    const message = store.get(id);
    if (!message) throw httpError(404, `no message ${id} in the store (deleted, purged or evicted)`);
    return message;
  };

  // Every response about one message's content is also sandboxed and never sniffed: a text/html
  // attachment opened in a tab must not run script on the viewer's origin.
  app.addHook('onSend', async (request, reply) => {
    if (request.url.startsWith('/api/v1/messages/')) {
      reply.header('X-Content-Type-Options', 'nosniff');
      if (!reply.hasHeader('Content-Security-Policy')) reply.header('Content-Security-Policy', "default-src 'none'; sandbox");
    }
  });

  // State changes (delete, purge) only through DELETE from this origin (src/viewer/security.ts).
  app.addHook('onRequest', async (request) => {
    if (request.method === 'GET' || request.method === 'HEAD') return;
    const refusal = crossSiteRefusal({
      method: request.method,
      host: request.headers.host,
      origin: request.headers.origin,
      secFetchSite: request.headers['sec-fetch-site'] as string | undefined,
    });
    if (refusal) throw httpError(403, refusal);
  });

  app.get<{ Querystring: { query?: string; mailbox?: string; start?: string; limit?: string } }>('/api/v1/messages', async (request) => {
    const { query, mailbox } = request.query;
    const start = integer(request.query.start, 0, 'start');
    const limit = Math.min(integer(request.query.limit, 50, 'limit'), 1000);
    const result = store.list({ ...(query ? { search: query } : {}), ...(mailbox ? { mailbox } : {}), start, limit });
    // The store parses summaries late (src/gateway/store.ts): show none before it is complete.
    await Promise.all(result.messages.map((m) => store.summarized(m)));
    return { total: result.total, start: result.start, count: result.messages.length, messages: result.messages.map(listItem) };
  });

  app.get('/api/v1/mailboxes', async () => ({ mailboxes: store.mailboxes() }));

  app.get<{ Params: { id: string } }>('/api/v1/messages/:id', async (request) => viewOf(cache, find(request.params.id), store));

  app.get<{ Params: { id: string } }>('/api/v1/messages/:id/raw', async (request, reply) => {
    const message = find(request.params.id);
    reply.header('Content-Type', 'message/rfc822').header('Content-Disposition', contentDisposition('attachment', `${message.id}.eml`));
    return message.raw;
  });

  app.get<{ Params: { id: string }; Querystring: { remote?: string } }>('/api/v1/messages/:id/html', async (request, reply) => {
    const message = find(request.params.id);
    const parsed = await cache.parsed(message);
    if (typeof parsed.html !== 'string') throw httpError(404, `message ${message.id} has no HTML part`);
    const allowRemote = request.query.remote === '1';
    const base = `/api/v1/messages/${encodeURIComponent(message.id)}/cid/`;
    const display = displayHtml(parsed.html, { cidUrl: (cid) => base + encodeURIComponent(cid), allowRemote });
    reply
      .header('Content-Type', 'text/html; charset=utf-8')
      .header('Content-Security-Policy', frameCsp(allowRemote))
      .header('Referrer-Policy', 'no-referrer')
      .header('X-DNS-Prefetch-Control', 'off')
      .header('Cache-Control', 'no-store');
    return frameDocument(display);
  });

  const sendPart = (reply: FastifyReply, part: { content: Buffer; contentType: string; filename?: string }, index: number, inlineImage: boolean) => {
    const name = part.filename ?? `part-${index}`;
    reply
      .header('Content-Type', part.contentType || 'application/octet-stream')
      .header('Content-Disposition', contentDisposition(inlineImage && part.contentType.startsWith('image/') ? 'inline' : 'attachment', name))
      .header('Cache-Control', 'private, max-age=3600');
    return part.content;
  };

  app.get<{ Params: { id: string; index: string } }>('/api/v1/messages/:id/parts/:index', async (request, reply) => {
    const message = find(request.params.id);
    const index = integer(request.params.index, 0, 'part index');
    const part = (await cache.parsed(message)).attachments[index];
    if (!part) throw httpError(404, `message ${message.id} has no part ${index}`);
    return sendPart(reply, part, index, false);
  });

  app.get<{ Params: { id: string; cid: string } }>('/api/v1/messages/:id/cid/:cid', async (request, reply) => {
    const message = find(request.params.id);
    const attachments = (await cache.parsed(message)).attachments;
    const index = attachments.findIndex((a) => bareContentId(a.contentId) === request.params.cid);
    const part = attachments[index];
    if (!part) throw httpError(404, `message ${message.id} has no part with Content-ID <${request.params.cid}>`);
    return sendPart(reply, part, index, true);
  });

  app.delete<{ Params: { id: string } }>('/api/v1/messages/:id', async (request) => {
    if (!store.delete(request.params.id)) throw httpError(404, `no message ${request.params.id} in the store`);
    return { deleted: request.params.id };
  });

  // Purge: GreenMail first, so that a failure there leaves both sides as they were (and says so).
  app.delete('/api/v1/messages', async () => {
    try {
      await purgeMailboxes();
    } catch (error) {
      throw httpError(502, `GreenMail purge failed, nothing deleted: ${(error as Error).message}`);
    }
    const { messages } = store.stats();
    store.purge();
    return { purged: messages };
  });
}
