// Talking to the servers the benchmarks start as child processes on 127.0.0.1 (their certificates name
// `localhost`): one HTTPS call, and waiting until a path answers 200.
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:https';

export function httpsCall(port: number, ca: string, path: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', ca, servername: 'localhost', headers: body === undefined ? {} : { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error(`no answer from 127.0.0.1:${port}${path} within 5 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls `path` until it answers 200; kills the child and throws when it exits or 20 s pass. */
export async function waitForChild(child: ChildProcess, port: number, ca: string, path: string, name: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let problem = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before it was ready`);
    const ready = await httpsCall(port, ca, path).then(
      (r) => r.status === 200 || ((problem = `${path} answered ${r.status}`), false),
      (err: unknown) => ((problem = String(err)), false),
    );
    if (ready) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`${name} not ready on 127.0.0.1:${port} within 20 s: ${problem}`);
}
