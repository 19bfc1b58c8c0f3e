// PLACEHOLDER (contract only) — owned by the PKI helper.
/** Writes mail-ca.{crt,key}, webhook-ca.crt, webhook.{crt,key} (localhost, 127.0.0.1) into dir; never overwrites an existing CA. */
export async function writeDevCerts(_dir: string): Promise<string[]> {
  throw new Error('not implemented yet');
}
