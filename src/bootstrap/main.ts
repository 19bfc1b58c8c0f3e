// PLACEHOLDER (contract only) — owned by the bootstrap helper.
import type { Settings } from '../config.js';
export interface BootstrapOptions {
  settings: Settings;
  /** Write the desired objects as YAML files here instead of touching a cluster. */
  outputDir?: string;
  /** kubeconfig path; default: in-cluster or KUBECONFIG. */
  kubeconfig?: string;
}
export async function runBootstrap(_opts: BootstrapOptions): Promise<void> {
  throw new Error('not implemented yet');
}
