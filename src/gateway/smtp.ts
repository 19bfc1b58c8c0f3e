// The three SMTP listeners (DESIGN §7) on npm smtp-server: protocol, STARTTLS/implicit TLS, AUTH and
// limits are the library's; what is ours is which listener demands what, the accounts, and handing
// each complete message to the accept path (accept.ts).
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { TLS_MIN_VERSION } from '../webhook/tls-material.js';
import { authenticate, type Account } from './accounts.js';
import type { AcceptPath } from './accept.js';
import type { GatewayMetrics } from './metrics.js';
import type { MessageOrigin } from './store.js';

export type ListenerName = Exclude<MessageOrigin, 'generated'>;

/**
 * smtp (2525): MX-like, STARTTLS offered, AUTH optional (only after STARTTLS).
 * submission (2587): AUTH required, and only after STARTTLS.
 * smtps (2465): implicit TLS, AUTH required.
 */
export const LISTENERS: Readonly<Record<ListenerName, { secure: boolean; authRequired: boolean }>> = Object.freeze({
  smtp: { secure: false, authRequired: false },
  submission: { secure: false, authRequired: true },
  smtps: { secure: true, authRequired: true },
});

export interface SmtpLimits {
  messageSizeLimit: number;
  maxRecipients: number;
  /** Idle time allowed between commands (and for a TLS handshake), ms. */
  socketTimeoutMs: number;
  /** On close: how long running sessions may finish before they are cut, ms. */
  closeTimeoutMs: number;
  /** Concurrent sessions per listener. */
  maxClients: number;
  /** Longest command line (a line without CRLF longer than this ends the session). */
  maxCommandLength: number;
}

export const DEFAULT_SMTP_LIMITS: Omit<SmtpLimits, 'messageSizeLimit' | 'maxRecipients'> = Object.freeze({
  socketTimeoutMs: 60_000,
  closeTimeoutMs: 20_000,
  maxClients: 200,
  maxCommandLength: 4096,
});

export interface SmtpListenerOptions {
  name: ListenerName;
  /** Host name in the greeting (the smtpdemo Service's FQDN). */
  hostname: string;
  tls: { certPem: string; keyPem: string };
  accounts: readonly Account[];
  accept: AcceptPath;
  limits: SmtpLimits;
  metrics: GatewayMetrics;
  logger: Logger;
}

export interface SmtpListener {
  name: ListenerName;
  server: SMTPServer;
  listen(port: number, host: string): Promise<number>;
  /** Swaps the certificate for new sessions; running sessions keep theirs. */
  setTls(tls: { certPem: string; keyPem: string }): void;
  /** Stops accepting; running sessions get `closeTimeoutMs` to finish. */
  close(): Promise<void>;
}

interface SmtpError extends Error {
  responseCode?: number;
}

function smtpError(code: number, message: string): SmtpError {
  return Object.assign(new Error(message), { responseCode: code });
}

function address(value: { address: string } | false | undefined): string {
  return value ? value.address : '';
}

export function createSmtpListener(options: SmtpListenerOptions): SmtpListener {
  const { name, accounts, accept, limits, metrics } = options;
  const mode = LISTENERS[name];
  const logger = options.logger.child({ listener: name });
  const tlsVersions = new Map<string, string>();

  const serverOptions: SMTPServerOptions = {
    name: options.hostname,
    banner: 'demomail gateway: every message is captured, none is relayed',
    secure: mode.secure,
    key: options.tls.keyPem,
    cert: options.tls.certPem,
    minVersion: TLS_MIN_VERSION,
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: !mode.authRequired,
    // AUTH only over TLS, on every listener (a password never crosses the network in clear).
    allowInsecureAuth: false,
    hideENHANCEDSTATUSCODES: false,
    size: limits.messageSizeLimit,
    rejectOversized: true,
    maxRecipients: limits.maxRecipients,
    socketTimeout: limits.socketTimeoutMs,
    closeTimeout: limits.closeTimeoutMs,
    maxClients: limits.maxClients,
    maxCommandLength: limits.maxCommandLength,
    // No DNS: the pod has no egress, and a PTR lookup per session would only add a timeout.
    disableReverseLookup: true,
    logger: false,
    onConnect(session, callback) {
      logger.debug({ session: session.id, client: session.remoteAddress }, 'session opened');
      callback();
    },
    onSecure(socket, session, callback) {
      tlsVersions.set(session.id, (socket as TLSSocket).getProtocol?.() ?? 'TLS');
      callback();
    },
    onAuth(auth, session, callback) {
      const account = authenticate(accounts, auth.username ?? '', auth.password ?? '');
      if (!account) {
        metrics.authFailures.inc();
        metrics.refused.inc({ reason: 'auth' });
        // The username is an address the client chose; the password is never logged.
        logger.warn({ session: session.id, client: session.remoteAddress, method: auth.method, username: auth.username }, 'authentication failed');
        return callback(smtpError(535, 'Authentication credentials invalid'));
      }
      logger.debug({ session: session.id, username: account.username }, 'authenticated');
      callback(null, { user: account.username });
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      let bytes = 0;
      let oversized = false;
      let ended = false;
      const envelope = { mailFrom: address(session.envelope.mailFrom), rcptTo: session.envelope.rcptTo.map((r) => r.address) };
      const tlsVersion = tlsVersions.get(session.id);
      // The copies start into GreenMail now (MAIL, RCPT, DATA there while the client sends); each
      // chunk goes on to them as it arrives. Nothing reaches a mailbox before the final dot.
      const transaction = accept.begin({
        envelope,
        ...(session.user ? { authUser: String(session.user) } : {}),
        ...(tlsVersion ? { tls: tlsVersion } : {}),
        clientAddress: session.remoteAddress,
        origin: name,
      });
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > limits.messageSizeLimit) {
          // Keep reading to the final dot (the client is still sending), but keep nothing, and
          // drop the copies before their final dot: GreenMail discards them.
          if (!oversized) transaction.abort();
          oversized = true;
          chunks.length = 0;
          return;
        }
        chunks.push(chunk);
        transaction.write(chunk);
      });
      // The client went away mid-message (smtp-server destroys the stream): drop the copies.
      stream.on('error', () => {});
      stream.once('close', () => {
        if (!ended) transaction.abort();
      });
      stream.once('end', () => {
        ended = true;
        if (oversized || stream.sizeExceeded) {
          transaction.abort();
          // rejectOversized makes smtp-server answer 552 5.3.4 whatever we pass here.
          metrics.refused.inc({ reason: 'size' });
          logger.info({ session: session.id, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, bytes }, 'message refused: over the size limit');
          return callback(smtpError(552, 'Error: message exceeds fixed maximum message size'));
        }
        transaction
          .finish(Buffer.concat(chunks))
          .then(
            ({ stored, simulated }) => {
              callback(null, `OK: captured as ${stored.id}`);
              if (simulated.length > 0) void accept.simulate(stored, simulated);
            },
            (err: Error) => {
              metrics.refused.inc({ reason: 'delivery' });
              logger.warn({ session: session.id, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, err: err.message }, 'message not accepted: delivery into GreenMail failed, answered 451');
              callback(smtpError(451, 'Error: the mailbox store is not available, try again later'));
            },
          );
      });
    },
    onClose(session) {
      tlsVersions.delete(session.id);
      logger.debug({ session: session.id }, 'session closed');
    },
  };
  const server = new SMTPServer(serverOptions);
  // Without this listener a client's failed TLS handshake (e.g. one that does not trust our CA)
  // is an unhandled 'error' event and kills the process.
  server.on('error', (err: Error & { code?: string; meta?: { remoteAddress?: string } }) => {
    metrics.refused.inc({ reason: err.code?.startsWith('ERR_SSL') || /TLS|SSL|handshake/i.test(err.message) ? 'tls' : 'connection' });
    logger.debug({ code: err.code, client: err.meta?.remoteAddress, err: err.message }, 'client connection error');
  });

  return {
    name,
    server,
    listen: (port, host) =>
      new Promise<number>((resolve, reject) => {
        const onError = (err: Error) => reject(new Error(`${name} listener cannot listen on ${host}:${port}: ${err.message}`));
        server.server.once('error', onError);
        server.listen(port, host, () => {
          server.server.off('error', onError);
          resolve((server.server.address() as AddressInfo).port);
        });
      }),
    setTls: (tls) => server.updateSecureContext({ key: tls.keyPem, cert: tls.certPem, minVersion: TLS_MIN_VERSION }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
