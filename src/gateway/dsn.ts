// Generated messages (DESIGN §7 rule 3), pure: RFC 3464 delivery status notifications and RFC 3834
// auto-replies built from the captured original. Bytes in, bytes out; tested in dsn.test.ts.
import type { Envelope, SimulatedOutcome } from './routing.js';

export interface GeneratedMessage {
  /** Envelope of the generated message (DSNs use the null sender `<>`). */
  envelope: Envelope;
  raw: Buffer;
}

export interface GenerateInput {
  outcome: SimulatedOutcome;
  /** The original message as received. */
  original: Buffer;
  originalEnvelope: Envelope;
  /** Host name the DSN names as reporting MTA (the smtpdemo Service's FQDN). */
  reportingMta: string;
  now: Date;
}

// SKELETON (replaced by the routing work).
export function generateMessage(_input: GenerateInput): GeneratedMessage | undefined {
  return undefined;
}
