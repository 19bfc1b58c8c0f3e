// PLACEHOLDER (contract only) — owned by the PKI helper.
export interface InstallCaOptions {
  dir: string;
  caPem: string;
  systemBundlePath: string;
}
/** Writes ca.crt, ca-bundle.crt, php/zz-demomail.ini atomically; returns the written paths. */
export async function installCa(_opts: InstallCaOptions): Promise<string[]> {
  throw new Error('not implemented yet');
}
