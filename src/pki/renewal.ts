// PLACEHOLDER (contract only) — owned by the PKI helper.
export interface RenewalInput {
  now: Date;
  wantedSans: string[];
  /** PEM of the CA that must have signed it. */
  issuerPem: string;
}
export interface RenewalDecision {
  due: boolean;
  reason: string;
}
export function renewalDue(_certPem: string | undefined, _input: RenewalInput): RenewalDecision {
  throw new Error('not implemented yet');
}
