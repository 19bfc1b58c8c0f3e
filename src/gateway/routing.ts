// Routing (DESIGN §7), pure: an envelope → where each recipient's copy goes, and which simulated
// outcomes (DSN, auto-reply) the gateway must generate. No I/O; table tests in routing.test.ts.
//
// Decisions the design leaves open, in the order the rules are tried for one recipient:
// - Rule 3 first: `hard*`, `soft*`, `ooo*` at SIMULATE_DOMAIN (any case) get no copy, the address
//   does not exist. Any other local part at SIMULATE_DOMAIN is an ordinary address and goes through
//   rules 1, 2 and 4 like any other: a typo (`hadr-1@bounce…`) shows up in a mailbox of its own
//   instead of vanishing.
// - A local part with `+` is always plus-addressed (rule 1): `LOCAL+DETAIL@DOMAIN` → `LOCAL@DOMAIN`,
//   whatever VERP_LOCALPART and BOUNCE_MAILBOX say, because CiviCRM polls the mailbox named by its
//   own localpart (`imap+` → `imap@`). Its label is `civimail-return-path` when the address is
//   CiviMail-shaped (VERP_LOCALPART followed by the VERP tail, or a DETAIL that is the bare VERP
//   tail, so `imap+b.7.42.<hex>` is recognised even with VERP_LOCALPART left empty): the viewer's
//   badge then says what the address is; the mailbox is the one plus-addressing gives either way.
// - Rule 2 only for local parts without `+`, and only at MAIL_DOMAIN: it sends mail to a mailbox
//   the address does not name, so it stays narrow.
// - Recipients are compared case-insensitively (GreenMail's mailboxes are lower-cased, so `Bob@` and
//   `bob@` are one mailbox): a recipient given twice gets one copy, the first spelling is kept.
//   Two different recipients that map to one mailbox (`imap+a@`, `imap+b@`) get one copy each, as a
//   real MTA and GreenMail itself do: each copy carries its own Delivered-To / X-Original-To.
// - Mail from the null sender triggers no simulated outcome (RFC 5321 §4.5.5, RFC 3834 §2: never
//   answer a notification). Every generated message has the null sender, so a DSN or auto-reply can
//   never cause another one; addressed to a simulated address it is dropped (captured, no copy).
// - Odd input never throws: no `@`, an empty part or a quoted local part (where `+` is not a
//   separator) goes to its own lower-cased address unchanged (rule 4); the SMTP layer refuses
//   malformed addresses before this runs anyway.
import type { Delivery, GeneratedFrom, RoutingRule } from './store.js';

export interface Envelope {
  /** MAIL FROM, '' for the null sender `<>`. */
  mailFrom: string;
  rcptTo: string[];
}

export interface RoutingSettings {
  mailDomain: string;
  simulateDomain: string;
  bounceMailbox: string;
  verpLocalpart: string;
}

export interface SimulatedOutcome {
  kind: GeneratedFrom['kind'];
  /** The simulated recipient that triggered it (`hard-1@bounce.demomail.test`). */
  recipient: string;
}

export interface RoutingPlan {
  /** One per envelope recipient that gets a copy in GreenMail (simulated recipients get none). */
  deliveries: Delivery[];
  /** Messages the gateway generates (each then routed with `routeGenerated`). */
  simulated: SimulatedOutcome[];
}

/** The rule a simulated outcome counts under (metrics, viewer badges). */
export const SIMULATED_RULE: Record<GeneratedFrom['kind'], RoutingRule> = {
  'dsn-hard': 'simulated-hard-bounce',
  'dsn-soft': 'simulated-soft-bounce',
  'auto-reply': 'simulated-auto-reply',
};

const SIMULATED_PREFIXES: [string, GeneratedFrom['kind']][] = [
  ['hard', 'dsn-hard'],
  ['soft', 'dsn-soft'],
  ['ooo', 'auto-reply'],
];

/** CiviMail's VERP tail after its localpart: action letter, job id, queue id, hash. */
const VERP_TAIL = '[bcemoru]\\.\\d+\\.\\d+\\.[0-9a-f]{16}';
const BARE_VERP = new RegExp(`^${VERP_TAIL}$`, 'i');

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Where one recipient goes: a copy in a mailbox, or a simulated outcome and no copy. */
export type RecipientRoute = { delivery: Delivery } | { simulated: SimulatedOutcome };

/** Routes one recipient by rules 3, 1, 2, 4 (see the module comment for the order). */
export function routeRecipient(recipient: string, settings: RoutingSettings): RecipientRoute {
  const direct = (): RecipientRoute => ({ delivery: { recipient, mailbox: recipient.toLowerCase(), rule: 'direct' } });
  const at = recipient.lastIndexOf('@');
  if (at <= 0 || at === recipient.length - 1) return direct();
  const local = recipient.slice(0, at);
  const domain = recipient.slice(at + 1).toLowerCase();
  if (local.startsWith('"')) return direct();

  if (domain === settings.simulateDomain.toLowerCase()) {
    const lower = local.toLowerCase();
    for (const [prefix, kind] of SIMULATED_PREFIXES) {
      if (lower.startsWith(prefix)) return { simulated: { kind, recipient } };
    }
  }

  const plus = local.indexOf('+');
  if (plus > 0) {
    const civiMail = civiMailLocalPart(settings).test(local) || BARE_VERP.test(local.slice(plus + 1));
    return { delivery: { recipient, mailbox: `${local.slice(0, plus)}@${domain}`.toLowerCase(), rule: civiMail ? 'civimail-return-path' : 'plus-address' } };
  }
  if (domain === settings.mailDomain.toLowerCase() && civiMailLocalPart(settings).test(local)) {
    return { delivery: { recipient, mailbox: settings.bounceMailbox.toLowerCase(), rule: 'civimail-return-path' } };
  }
  return direct();
}

/** The local parts of CiviMail return paths under the configured VERP_LOCALPART. */
function civiMailLocalPart(settings: RoutingSettings): RegExp {
  return new RegExp(`^${escapeRegExp(settings.verpLocalpart)}${VERP_TAIL}$`, 'i');
}

export function planRouting(envelope: Envelope, settings: RoutingSettings): RoutingPlan {
  const seen = new Set<string>();
  const plan: RoutingPlan = { deliveries: [], simulated: [] };
  for (const recipient of envelope.rcptTo) {
    const key = recipient.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    const route = routeRecipient(recipient, settings);
    if ('delivery' in route) plan.deliveries.push(route.delivery);
    else if (envelope.mailFrom !== '') plan.simulated.push(route.simulated);
  }
  return plan;
}

/**
 * Routes a message the gateway generated (DSN, auto-reply) by the same rules: a DSN to
 * `imap+b.7.42.<hex>@demomail.test` lands in `imap@demomail.test`, one to `b.7.42.<hex>@demomail.test`
 * in BOUNCE_MAILBOX. Never plans another generated message, whatever the envelope says.
 */
export function routeGenerated(envelope: Envelope, settings: RoutingSettings): RoutingPlan {
  return { deliveries: planRouting(envelope, settings).deliveries, simulated: [] };
}
