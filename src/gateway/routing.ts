// Routing (DESIGN §7), pure: an envelope → where each recipient's copy goes, and which simulated
// outcomes (DSN, auto-reply) the gateway must generate. No I/O; table tests in routing.test.ts.
import type { Delivery, GeneratedFrom } from './store.js';

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
  /** Messages the gateway generates (each then routed with `planRouting` too). */
  simulated: SimulatedOutcome[];
}

// SKELETON (replaced by the routing work): every recipient goes to its own mailbox.
export function planRouting(envelope: Envelope, _settings: RoutingSettings): RoutingPlan {
  return { deliveries: envelope.rcptTo.map((recipient) => ({ recipient, mailbox: recipient.toLowerCase(), rule: 'direct' })), simulated: [] };
}
