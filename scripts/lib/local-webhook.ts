// The real webhook (`node dist/src/cli.js webhook`) as a local process for the e2e tests, the pod-create
// benchmark and the demo, plus the route from a control plane to it.
//
// Route: the MutatingWebhookConfiguration applied from manifests/ keeps its two entries, selectors and
// policies; only each entry's clientConfig is replaced by `url: https://127.0.0.1:PORT/mutate` + caBundle.
// The alternative (turn Service demomail-webhook into an ExternalName for localhost and patch
// clientConfig.service.port to the local port; cert SAN demomail-webhook.demomail.svc) also works, but
// replaces an applied object and depends on the API server resolving "localhost"; the url route touches
// one field per entry and nothing else.
import { httpsGet } from './wait.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, createServerCertificate } from '../../src/pki/certificates.js';
import { freePorts, lastLines, repoRoot, type ControlPlane } from './control-plane.js';

export interface LocalWebhook {
  port: number;
  /** https://127.0.0.1:PORT/mutate */
  url: string;
  /** CA of the webhook's serving certificate (what goes into caBundle). */
  servingCaPem: string;
  /** The mail CA the webhook injects (DEMOMAIL_CA_PEM of the init container). */
  mailCaPem: string;
  logFile: string;
  /** GET /metrics, raw Prometheus text. */
  metrics(): Promise<string>;
  /** Sum of demomail_webhook_requests_total over all status codes. */
  requestCount(): Promise<number>;
  logTail(lines?: number): string;
  /** SIGTERM (no drain), then SIGKILL after 5 s; removes the temp dir unless keepDir. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

export interface LocalWebhookOptions {
  /** Extra environment (DEMOMAIL_* settings) for the webhook process. */
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

/** Sum of one Prometheus counter's samples (all label sets) in an exposition text. */
export function counterTotal(metricsText: string, name: string): number {
  let total = 0;
  for (const line of metricsText.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match && match[1] === name) total += Number(match[3]);
  }
  return total;
}

/** The JSON patch that points every entry of the webhook configuration at `url`, trusting `caPem`. */
export function routeToUrlPatch(webhookCount: number, url: string, caPem: string): object[] {
  const caBundle = Buffer.from(caPem, 'utf8').toString('base64');
  return Array.from({ length: webhookCount }, (_, i) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig`, value: { url, caBundle } }));
}


export async function startLocalWebhook(options: LocalWebhookOptions = {}): Promise<LocalWebhook> {
  const root = repoRoot();
  const cli = join(root, 'dist', 'src', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (the e2e suite runs the built CLI, as the image does)`);
  const dir = await mkdtemp(join(tmpdir(), 'demomail-webhook-'));
  const servingCa = createCertificateAuthority({ commonName: 'demomail e2e webhook CA' });
  const serving = createServerCertificate({ ca: servingCa, commonName: 'demomail-webhook', sans: ['127.0.0.1', 'localhost'] });
  const mailCa = createCertificateAuthority({ commonName: 'demomail e2e mail CA' });
  await writeFile(join(dir, 'tls.crt'), serving.certPem);
  await writeFile(join(dir, 'tls.key'), serving.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'ca.crt'), mailCa.certPem);
  const [port] = (await freePorts(1)) as [number];
  const logFile = join(dir, 'webhook.log');
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(
    process.execPath,
    [cli, 'webhook', '--cert', join(dir, 'tls.crt'), '--key', join(dir, 'tls.key'), '--ca-file', join(dir, 'ca.crt'), '--port', String(port), '--host', '127.0.0.1'],
    { cwd: root, stdio: ['ignore', fd, fd], env: { ...process.env, DEMOMAIL_DRAIN_SECONDS: '0', ...options.env } },
  );
  closeSync(fd);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    exitCode = code ?? (signal ? -1 : null);
    resolve();
  }));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const base = `https://127.0.0.1:${port}`;
  const logTail = (lines = 40) => {
    try {
      return `--- webhook (${logFile}) ---\n${lastLines(readFileSync(logFile, 'utf8'), lines)}`;
    } catch {
      return '--- webhook: no log ---';
    }
  };
  const stop = async (o: { keepDir?: boolean } = {}) => {
    if (exitCode === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    if (!o.keepDir) await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  let last = 'no answer';
  for (;;) {
    if (exitCode !== undefined) {
      const tail = logTail(30);
      await stop();
      throw new Error(`webhook process exited with ${exitCode} during start-up\n${tail}`);
    }
    try {
      const r = await httpsGet({ url: `${base}/readyz`, caPem: servingCa.certPem });
      if (r.status === 200) break;
      last = `/readyz ${r.status} ${r.body}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const tail = logTail(30);
      await stop();
      throw new Error(`webhook not ready within the timeout (${last})\n${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const metrics = async () => {
    const r = await httpsGet({ url: `${base}/metrics`, caPem: servingCa.certPem });
    if (r.status !== 200) throw new Error(`GET ${base}/metrics answered ${r.status}`);
    return r.body;
  };
  return {
    port,
    url: `${base}/mutate`,
    servingCaPem: servingCa.certPem,
    mailCaPem: mailCa.certPem,
    logFile,
    metrics,
    requestCount: async () => counterTotal(await metrics(), 'demomail_webhook_requests_total'),
    logTail,
    stop,
  };
}

/** Points the applied MutatingWebhookConfiguration `name` at the local webhook (see the route note above). */
export async function routeWebhookTo(plane: ControlPlane, webhook: LocalWebhook, name = 'demomail'): Promise<void> {
  const config = plane.kubectlJson<{ webhooks?: unknown[] }>(['get', 'mutatingwebhookconfiguration', name]);
  const count = config.webhooks?.length ?? 0;
  if (count === 0) throw new Error(`MutatingWebhookConfiguration ${name} has no webhooks: apply manifests/ first`);
  plane.kubectlOk(['patch', 'mutatingwebhookconfiguration', name, '--type=json', '-p', JSON.stringify(routeToUrlPatch(count, webhook.url, webhook.servingCaPem))]);
}

/**
 * Waits until the API server uses the webhook configuration just written (its webhook informer lags a
 * little): a server-side dry-run of an opted-in pod in `namespace` comes back injected.
 */
export async function waitForWebhookInEffect(plane: ControlPlane, namespace: string, timeoutMs = 30_000): Promise<void> {
  const probe = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'demomail-route-probe', namespace, labels: { 'demomail/inject': 'true' } },
    spec: { automountServiceAccountToken: false, containers: [{ name: 'probe', image: 'registry.k8s.io/pause:3.10' }] },
  });
  const until = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await plane.kubectlAsync(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: probe });
    if (r.code === 0 && r.stdout.includes('"demomail-ca-init"')) return;
    last = r.code === 0 ? 'dry-run pod came back without the init container' : r.stderr.trim();
    if (Date.now() > until) throw new Error(`the API server did not start calling the local webhook within ${timeoutMs} ms: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
