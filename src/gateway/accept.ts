// The accept path (DESIGN §7): route, deliver every copy into GreenMail, then store. A message counts
// as accepted only when both happened; the SMTP layer answers 250 after `finish` (or `accept`)
// resolves and 451 when it rejects. A client's message is begun when its DATA starts (`begin`): its
// copies are streamed into GreenMail while it arrives and only get their final dot at the end of data.
// Simulated outcomes (DSNs, auto-replies) are generated afterwards and go through the same path
// (whole, with `accept`) with origin `generated`.
import type { Logger } from 'pino';
import { generateMessage } from './dsn.js';
import { deliveryCopy, deliveryPrefix, type DeliverFn, type StreamedCopy, type StreamFn } from './delivery.js';
import type { GatewayMetrics } from './metrics.js';
import { planRouting, routeGenerated, type Envelope, type RoutingSettings, type SimulatedOutcome } from './routing.js';
import type { CaptureStore, CapturedMessage, GeneratedFrom, MessageOrigin } from './store.js';
import { messageIdOf, summarizeMessage } from './summary.js';

export interface IncomingMessage {
  raw: Buffer;
  envelope: Envelope;
  authUser?: string;
  tls?: string;
  clientAddress: string;
  origin: MessageOrigin;
  generatedFrom?: GeneratedFrom;
}

export interface AcceptDeps {
  store: CaptureStore;
  deliver: DeliverFn;
  /** Opens a copy streamed into GreenMail while the message arrives; without it every copy goes out whole after the end of data. */
  stream?: StreamFn;
  routing: RoutingSettings;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Host name a DSN names as reporting MTA. */
  reportingMta: string;
  now?: () => Date;
}

/** GreenMail refused or could not be reached: the client gets 451 and retries. */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
  constructor(
    message: string,
    /** Copies that reached GreenMail before the failure (GreenMail cannot take them back). */
    readonly delivered: number,
  ) {
    super(message);
  }
}


/** Copies of one message streamed while it arrives; the others go out whole after the end of data. */
export const MAX_STREAMED_COPIES = 4;

/** A message whose DATA is arriving: its copies are already on their way into GreenMail. */
export interface IncomingTransaction {
  /** The next bytes of the message, as the client sends them (smtp-server has already removed the dot-stuffing). */
  write(chunk: Buffer): void;
  /** End of data: the whole message (the same bytes as written). Settles like `AcceptPath.accept`. */
  finish(raw: Buffer): Promise<{ stored: CapturedMessage; simulated: SimulatedOutcome[] }>;
  /** Over the size limit or the client went away: every streamed copy is dropped before its final dot; nothing is delivered or stored. */
  abort(): void;
}

export class AcceptPath {
  constructor(private readonly deps: AcceptDeps) {}

  /**
   * Starts a message when the client's DATA begins: routes the envelope and opens up to
   * `MAX_STREAMED_COPIES` copies into GreenMail (MAIL, RCPT and DATA go out while the client is still
   * sending). `finish` then only sends each final dot; `abort` drops them all.
   */
  begin(message: Omit<IncomingMessage, 'raw'>): IncomingTransaction {
    const plan = this.plan(message);
    const streams = plan.deliveries.map((delivery, i) => (i < MAX_STREAMED_COPIES ? this.deps.stream?.(message.envelope.mailFrom, delivery.mailbox, deliveryPrefix(delivery)) : undefined));
    let open = true;
    return {
      write: (chunk) => {
        if (open) for (const s of streams) s?.write(chunk);
      },
      finish: (raw) => {
        if (!open) return Promise.reject(new Error('message already finished or aborted'));
        open = false;
        return this.complete({ ...message, raw }, plan, streams);
      },
      abort: () => {
        if (!open) return;
        open = false;
        for (const s of streams) s?.abort();
      },
    };
  }

  /**
   * Delivers and stores one whole message; resolves with the stored record and the outcomes to simulate.
   * Copies go out one after the other: when one fails, the rest are not attempted and nothing is
   * stored (the copies already in GreenMail stay there: SMTP has no way to take a message back, so
   * a client retry after 451 may duplicate them in those mailboxes — a duplicate beats a loss). With
   * `begin`, the streamed copies get their final dots together, so with several recipients more than
   * the copies before the failing one may already be in GreenMail (same consequence).
   */
  async accept(message: IncomingMessage): Promise<{ stored: CapturedMessage; simulated: SimulatedOutcome[] }> {
    return this.complete(message, this.plan(message), []);
  }

  private plan(message: Pick<IncomingMessage, 'origin' | 'envelope'>) {
    const { routing } = this.deps;
    return message.origin === 'generated' ? routeGenerated(message.envelope, routing) : planRouting(message.envelope, routing);
  }

  /**
   * End of data. Streamed copies get their final dot (all at once); a streamed copy that failed before
   * its final dot (GreenMail discarded it) and every copy that was not streamed then go out whole,
   * one after the other. The first failure ends it: DeliveryError, nothing stored.
   */
  private async complete(message: IncomingMessage, plan: ReturnType<AcceptPath['plan']>, streams: (StreamedCopy | undefined)[]): Promise<{ stored: CapturedMessage; simulated: SimulatedOutcome[] }> {
    const { store, deliver, metrics, logger } = this.deps;
    // A client's message is summarized by the store later (in the quiet moment, or when first read):
    // not on the path to the 250. Generated mail (DSNs, auto-replies: few, and what a demo shows)
    // is summarized now, while its copies travel, so it is complete from the start.
    const summarizing = message.origin === 'generated' ? summarizeMessage(message.raw) : undefined;
    summarizing?.catch(() => {}); // awaited below; a delivery failure must not leave it unhandled
    const ends = streams.map((s) => s?.end());
    let delivered = 0;
    for (const [i, delivery] of plan.deliveries.entries()) {
      try {
        const streamed = await ends[i];
        if (!streamed?.sent) await deliver(message.envelope.mailFrom, delivery.mailbox, deliveryCopy(message.raw, delivery));
      } catch (err) {
        for (const s of streams.slice(i + 1)) s?.abort();
        throw new DeliveryError(`GreenMail did not take the copy for ${delivery.mailbox}: ${(err as Error).message}`, delivered);
      }
      delivered++;
    }
    const summary = summarizing ? await summarizing : undefined;
    for (const delivery of plan.deliveries) metrics.deliveries.inc({ rule: delivery.rule });
    const stored = store.add({
      raw: message.raw,
      envelope: message.envelope,
      ...(message.authUser ? { authUser: message.authUser } : {}),
      ...(message.tls ? { tls: message.tls } : {}),
      clientAddress: message.clientAddress,
      origin: message.origin,
      ...(message.generatedFrom ? { generatedFrom: message.generatedFrom } : {}),
      deliveries: plan.deliveries,
      ...(summary ? { summary } : {}),
    });
    metrics.accepted.inc({ origin: message.origin });
    logger.info(
      {
        id: stored.id,
        origin: message.origin,
        mailFrom: message.envelope.mailFrom,
        rcptTo: message.envelope.rcptTo,
        mailboxes: plan.deliveries.map((d) => d.mailbox),
        messageId: summary ? summary.messageIdHeader : messageIdOf(message.raw),
        size: message.raw.length,
        simulated: plan.simulated.map((s) => `${s.kind}:${s.recipient}`),
      },
      'message accepted',
    );
    return { stored, simulated: plan.simulated };
  }

  /**
   * Generates, delivers and stores each simulated outcome of `original`. Never throws: a failure is
   * logged and counted (the original was already accepted), with a few retries while GreenMail is
   * briefly unavailable.
   */
  async simulate(original: CapturedMessage, outcomes: SimulatedOutcome[], options: { retries?: number; retryDelayMs?: number } = {}): Promise<CapturedMessage[]> {
    const { metrics, logger, reportingMta } = this.deps;
    const results: CapturedMessage[] = [];
    for (const outcome of outcomes) {
      const kind = outcome.kind;
      let generated;
      try {
        generated = generateMessage({ outcome, original: original.raw, originalEnvelope: original.envelope, reportingMta, now: (this.deps.now ?? (() => new Date()))() });
      } catch (err) {
        metrics.simulated.inc({ kind, result: 'failure' });
        logger.error({ id: original.id, outcome: outcome.kind, recipient: outcome.recipient, err: (err as Error).message }, 'simulated outcome could not be generated');
        continue;
      }
      if (!generated) {
        // e.g. a DSN for a message with the null sender, or an auto-reply to a message without a reply address
        metrics.simulated.inc({ kind, result: 'skipped' });
        logger.info({ id: original.id, outcome: outcome.kind, recipient: outcome.recipient }, 'simulated outcome not generated (nobody to send it to)');
        continue;
      }
      const retries = options.retries ?? 5;
      for (let attempt = 0; ; attempt++) {
        try {
          const { stored } = await this.accept({
            raw: generated.raw,
            envelope: generated.envelope,
            clientAddress: '127.0.0.1',
            origin: 'generated',
            generatedFrom: { kind: outcome.kind, messageId: original.id, recipient: outcome.recipient },
          });
          metrics.simulated.inc({ kind, result: 'success' });
          results.push(stored);
          break;
        } catch (err) {
          logger.warn({ id: original.id, outcome: outcome.kind, attempt: attempt + 1, err: (err as Error).message }, 'simulated outcome not delivered yet');
          if (attempt >= retries) {
            metrics.simulated.inc({ kind, result: 'failure' });
            logger.error({ id: original.id, outcome: outcome.kind, err: (err as Error).message }, 'simulated outcome not delivered');
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, (options.retryDelayMs ?? 1000) * 2 ** attempt));
        }
      }
    }
    return results;
  }
}
