// PKCS#12 keystore for GreenMail (`-Dgreenmail.tls.keystore.file`), which loads it as a Java KeyStore of
// type PKCS12. Algorithms chosen so that Java 17 keytool and OpenSSL 3 (without -legacy) both read it:
// the key bag is PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) — what Java ≥ 12 writes itself; certificate bags
// are unencrypted (public data); the integrity MAC is HMAC-SHA1 (the only MAC node-forge implements, and
// the one every PKCS#12 reader supports).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import forge from 'node-forge';
import { splitPemCertificates, type KeyPairPem } from './certificates.js';

export const PKCS12_DEFAULT_ALIAS = 'demomail';
/** PBKDF2 / MAC iterations: Java's own default for PKCS12 is 10000. */
const ITERATIONS = 10000;

/** PKCS#12 keystore (key + cert chain incl. CA), readable by Java 17 keytool/GreenMail. */
export function toPkcs12(pair: KeyPairPem, caPem: string, password: string, alias: string = PKCS12_DEFAULT_ALIAS): Buffer {
  // PKCS#12 turns the password into bytes differently for the MAC (UTF-16) and for PBES2 (implementation
  // defined); with printable ASCII every reader agrees.
  if (!/^[\x21-\x7e]+$/.test(password)) {
    throw new Error('PKCS#12 keystore password must be non-empty printable ASCII without spaces (Java and OpenSSL disagree on other characters)');
  }
  if (alias.trim() === '') throw new Error('PKCS#12 alias is empty; pass a name such as "demomail"');
  const [leafPem, ...extra] = splitPemCertificates(pair.certPem);
  const chainPems = [leafPem as string, ...extra, ...splitPemCertificates(caPem)].filter(
    (pem, i, all) => all.indexOf(pem) === i,
  );

  let keyObject;
  try {
    keyObject = createPrivateKey(pair.keyPem);
  } catch (err) {
    throw new Error(`PKCS#12: the private key cannot be read: ${(err as Error).message}`);
  }
  if (keyObject.asymmetricKeyType !== 'rsa') {
    throw new Error(`PKCS#12: the private key is ${keyObject.asymmetricKeyType ?? 'unknown'}; node-forge writes RSA keys only`);
  }
  if (!new X509Certificate(leafPem as string).checkPrivateKey(keyObject)) {
    throw new Error('PKCS#12: the private key does not belong to the certificate; pass the matching tls.crt/tls.key pair');
  }
  const key = forge.pki.privateKeyFromPem(keyObject.export({ type: 'pkcs8', format: 'pem' }) as string);
  const chain = chainPems.map((pem) => forge.pki.certificateFromPem(pem));

  const asn1 = forge.pkcs12.toPkcs12Asn1(key, chain, password, {
    algorithm: 'aes256',
    // Passed through to PBES2; @types/node-forge does not list it.
    ...({ prfAlgorithm: 'sha256' } as object),
    count: ITERATIONS,
    saltSize: 16,
    friendlyName: alias,
    generateLocalKeyId: true,
  });
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
}
