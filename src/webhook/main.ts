// PLACEHOLDER (contract only) — owned by the webhook helper.
import type { Settings } from '../config.js';
export interface WebhookOptions {
  certFile: string;
  keyFile: string;
  caFile: string;
  port: number;
  host: string;
  settings: Settings;
}
/** Starts the HTTPS server, installs SIGTERM/SIGINT handling (stop ready, drain, exit 0); resolves when closed. */
export async function runWebhook(_opts: WebhookOptions): Promise<void> {
  throw new Error('not implemented yet');
}
