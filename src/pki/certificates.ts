// PLACEHOLDER (contract only) — owned by the PKI helper, who replaces this file.
export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}
export interface CaOptions {
  commonName: string;
  validityDays?: number;
  now?: Date;
}
export interface LeafOptions {
  ca: KeyPairPem;
  commonName: string;
  sans: string[];
  validityDays?: number;
  now?: Date;
}
export function createCertificateAuthority(_opts: CaOptions): KeyPairPem {
  throw new Error('not implemented yet');
}
export function createServerCertificate(_opts: LeafOptions): KeyPairPem {
  throw new Error('not implemented yet');
}
/** "sha256:<64 lower-case hex>" of the DER of the first certificate in the PEM. */
export function certificateFingerprint(_pem: string): string {
  throw new Error('not implemented yet');
}
/** The PEM blocks of type CERTIFICATE, each normalised ("-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"); throws on any other block type or undecodable data. */
export function splitPemCertificates(_pem: string): string[] {
  throw new Error('not implemented yet');
}
