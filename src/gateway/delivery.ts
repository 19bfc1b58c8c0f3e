// Delivery into GreenMail's SMTP on 127.0.0.1 (plain, no auth: it listens on loopback only, inside
// the pod). One SMTP transaction per copy, because each copy carries its own Delivered-To header.
import nodemailer from 'nodemailer';
import type { Delivery } from './store.js';

/** Puts one copy into one GreenMail mailbox; rejects when GreenMail refuses or is unreachable. */
export type DeliverFn = (mailFrom: string, mailbox: string, copy: Buffer) => Promise<void>;

export interface GreenmailDeliverer {
  deliver: DeliverFn;
  close(): void;
}

/**
 * The bytes delivered to one mailbox: `Delivered-To:` always, `X-Original-To:` when routing changed
 * the address (plus-address, CiviMail return path), then the message unchanged. Pure.
 */
export function deliveryCopy(raw: Buffer, delivery: Delivery): Buffer {
  const lines = [`Delivered-To: ${delivery.mailbox}`];
  if (delivery.recipient.toLowerCase() !== delivery.mailbox.toLowerCase()) lines.push(`X-Original-To: ${delivery.recipient}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8'), raw]);
}

/**
 * A pooled nodemailer transport to GreenMail: a few reused connections (GreenMail's SMTP handler is
 * per-connection; reuse saves the handshake per copy). A connection GreenMail closed is reopened.
 */
export function greenmailDeliverer(options: {
  host: string;
  port: number;
  /**
   * Envelope sender used towards GreenMail for mail from the null sender `<>` (DSNs, auto-replies,
   * a client's own bounces): GreenMail 2.1.7 answers `MAIL FROM:<>` with an error. Only the hop into
   * GreenMail changes; the capture keeps the real, empty sender.
   */
  nullSender: string;
  maxConnections?: number;
  timeoutMs?: number;
}): GreenmailDeliverer {
  const timeout = options.timeoutMs ?? 15_000;
  const transport = nodemailer.createTransport({
    pool: true,
    host: options.host,
    port: options.port,
    secure: false,
    ignoreTLS: true,
    maxConnections: options.maxConnections ?? 4,
    connectionTimeout: Math.min(timeout, 5_000),
    greetingTimeout: timeout,
    socketTimeout: timeout,
    name: 'demomail-gateway',
  });
  return {
    deliver: async (mailFrom, mailbox, copy) => {
      await transport.sendMail({ envelope: { from: mailFrom === '' ? options.nullSender : mailFrom, to: [mailbox] }, raw: copy });
    },
    close: () => transport.close(),
  };
}
