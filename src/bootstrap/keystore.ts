// Whether a stored PKCS#12 keystore can be kept. A keystore is re-encrypted with a fresh salt every time it
// is built, so rebuilding it on every run would change the Secret (and roll GreenMail) on every run: it is
// kept as long as it opens with the stored password and holds exactly the current certificate and key.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import forge from 'node-forge';
import { pemToDer, splitPemCertificates } from '../pki/certificates.js';

/** Undefined when the keystore is usable as it is, otherwise why it must be rebuilt. */
export function keystoreProblem(p12: Buffer | undefined, password: string | undefined, certPem: string, keyPem: string, caPem: string): string | undefined {
  if (p12 === undefined || p12.length === 0) return 'keystore is missing';
  if (password === undefined || password === '') return 'keystore password is missing';
  let store: forge.pkcs12.Pkcs12Pfx;
  try {
    store = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.createBuffer(p12.toString('binary'))), password);
  } catch (err) {
    return `keystore cannot be opened with the stored password: ${(err as Error).message}`;
  }
  const certBags = store.getBags({ bagType: forge.pki.oids['certBag'] as string })[forge.pki.oids['certBag'] as string] ?? [];
  const keyBags = store.getBags({ bagType: forge.pki.oids['pkcs8ShroudedKeyBag'] as string })[forge.pki.oids['pkcs8ShroudedKeyBag'] as string] ?? [];
  const certDers = certBags.flatMap((bag) => (bag.cert ? [Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(bag.cert)).getBytes(), 'binary')] : []));
  const wantedLeaf = pemToDer(splitPemCertificates(certPem)[0] as string);
  if (!certDers.some((der) => der.equals(wantedLeaf))) return 'keystore holds another certificate than tls.crt';
  const wantedCa = pemToDer(splitPemCertificates(caPem)[0] as string);
  if (!certDers.some((der) => der.equals(wantedCa))) return 'keystore chain lacks the current CA';
  const key = keyBags[0]?.key;
  if (key === undefined || keyBags.length !== 1) return 'keystore does not hold exactly one private key';
  const keyPemInStore = forge.pki.privateKeyToPem(key);
  try {
    if (!new X509Certificate(wantedLeaf).checkPrivateKey(createPrivateKey(keyPemInStore))) return 'keystore key does not belong to tls.crt';
    const storedKey = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
    if (!storedKey.equals(createPrivateKey(keyPemInStore).export({ type: 'pkcs8', format: 'der' }))) return 'keystore key differs from tls.key';
  } catch (err) {
    return `keystore key cannot be read: ${(err as Error).message}`;
  }
  return undefined;
}
