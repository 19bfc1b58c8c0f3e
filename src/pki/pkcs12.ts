// PLACEHOLDER (contract only) — owned by the PKI helper.
import type { KeyPairPem } from './certificates.js';
/** PKCS#12 keystore (key + cert chain incl. CA), readable by Java 17 keytool/GreenMail. */
export function toPkcs12(_pair: KeyPairPem, _caPem: string, _password: string, _alias?: string): Buffer {
  throw new Error('not implemented yet');
}
