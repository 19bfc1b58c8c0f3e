// The viewer on its own, for tests and bench/viewer.ts: a fastify server hosting viewerPlugin over a
// capture store fed with real MIME (nodemailer-composed, summarised by the gateway's own code).
import Fastify from 'fastify';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { summarizeMessage } from '../../src/gateway/summary.js';
import { CaptureStore, type CaptureInput, type CapturedMessage } from '../../src/gateway/store.js';
import { viewerPlugin, type ViewerOptions } from '../../src/viewer/plugin.js';

/** RFC 5322 bytes of a nodemailer message, exactly what nodemailer would send over SMTP. */
export async function composeMessage(mail: Mail.Options): Promise<Buffer> {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  const info = await transport.sendMail(mail);
  return info.message as Buffer;
}

/** Stores `raw` the way the gateway does (summary from the bytes); deliveries default to each recipient's own mailbox. */
export async function captureRaw(
  store: CaptureStore,
  raw: Buffer,
  envelope: { mailFrom: string; rcptTo: string[] },
  extra: Partial<Omit<CaptureInput, 'raw' | 'envelope' | 'summary'>> = {},
): Promise<CapturedMessage> {
  return store.add({
    raw,
    envelope,
    clientAddress: '127.0.0.1',
    origin: 'submission',
    tls: 'TLSv1.3',
    deliveries: envelope.rcptTo.map((recipient) => ({ recipient, mailbox: recipient.toLowerCase(), rule: 'direct' })),
    ...extra,
    summary: await summarizeMessage(raw),
  });
}

export interface ViewerServer {
  url: string;
  store: CaptureStore;
  /** Every answered request: method, URL, status (what a test checks to prove a request was refused, not lost). */
  requests: { method: string; url: string; status: number }[];
  close(): Promise<void>;
}

export async function startViewerServer(options: Partial<ViewerOptions> = {}): Promise<ViewerServer> {
  const store = options.store ?? new CaptureStore({ maxMessages: 5000, maxBytes: 256 * 1024 * 1024 });
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const requests: ViewerServer['requests'] = [];
  app.addHook('onResponse', async (request, reply) => void requests.push({ method: request.method, url: request.url, status: reply.statusCode }));
  await app.register(viewerPlugin, { purgeMailboxes: async () => {}, ...options, store });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, store, requests, close: () => app.close() };
}
