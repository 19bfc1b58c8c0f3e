// Small waiting and HTTPS helpers shared by the control-plane fixture, the local webhook, the e2e
// suites and the demo. Every wait is bounded.
import { request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `probe` until it returns something other than undefined; throws after timeoutMs naming `what`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000, intervalMs = 300): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export interface HttpsGetOptions {
  url: string;
  caPem: string;
  /** Client certificate, for endpoints that want one (the API server as admin). */
  certPem?: string;
  keyPem?: string;
  timeoutMs?: number;
}

/** GET over HTTPS verified against caPem; resolves with status and body, rejects on network errors. */
export function httpsGet(o: HttpsGetOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(o.url, { ca: o.caPem, cert: o.certPem, key: o.keyPem, timeout: o.timeoutMs ?? 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
