// `npm run demo`: the whole story on one machine, with real parts and no Docker.
//
//   control plane (etcd + kube-apiserver + kube-controller-manager, built from Go modules)
//   → kubectl apply -k manifests/ → demomail bootstrap (as its own ServiceAccount)
//   → demomail webhook (local process, reached through the production service: reference)
//   → GreenMail and the gateway with the rendered Deployment's options → the CiviCRM-like example
//   Deployment → print the injected parts of its pod → run the pod's init container command
//   → send a mail over 587 with STARTTLS through the gateway and read it back over IMAPS, using only
//   what was injected → a CiviMail-like mailing to hard-1@bounce.demomail.test and its simulated
//   bounce (a DSN) arriving in the IMAP account.
//
// `--keep` leaves everything running, prints how to connect and writes ~/.cache/demomail/demo/state.json
// (viewer URL, SMTP/IMAP ports, accounts, CA file) for scripts. Exit code 0 only if every step worked.
//
// However it ends (a failed step, Ctrl-C, SIGTERM, its output closed as in `npm run demo | head`), it
// stops everything it started before exiting: stop() below is the one way out.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { ImapFlow } from 'imapflow';
import { startControlPlane, type ControlPlane } from './lib/control-plane.js';
import { waitFor } from './lib/wait.js';
import { startGreenmail, type RunningGreenmail } from './lib/greenmail.js';
import { startGatewayProcess } from './lib/gateway.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(repo, 'dist/src/cli.js');
const keep = process.argv.includes('--keep');
const started = Date.now();

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- kubectl -o json output is untyped data we only read

const cleanups: Array<() => Promise<void> | void> = [];
/** The gateway's log, printed when the demo fails. */
const gatewayLines: string[] = [];
let stepNumber = 0;
/** Where --keep describes the running demo; removed when the demo stops. */
export const STATE_FILE = join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'demomail', 'demo', 'state.json');

// `npm run demo | head`: once the reader is gone, every write fails with EPIPE. Say nothing more
// (a write to a closed pipe would crash the process before the cleanup) and stop.
let outputClosed = false;
function out(text: string): void {
  if (!outputClosed) process.stdout.write(text);
}
function step(text: string): void {
  stepNumber += 1;
  out(`\n[${stepNumber}] ${text}  (+${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
}
function info(text: string): void {
  out(`    ${text.replace(/\n/g, '\n    ')}\n`);
}

function lastLine(command: string, args: string[]): string {
  const r = spawnSync(command, args, { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || line === '') throw new Error(`${command} ${args.join(' ')} failed (exit ${r.status})`);
  return line;
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function kubectlJson(plane: ControlPlane, args: string[]): Json {
  const r = plane.kubectl([...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as Json;
}

function kubectlOk(plane: ControlPlane, args: string[], input?: string): string {
  const r = plane.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

function runDemomail(args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`demomail ${args[0]} failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
  return r.stdout + r.stderr;
}

function secretValue(plane: ControlPlane, namespace: string, name: string, key: string): string {
  const secret = kubectlJson(plane, ['get', 'secret', name, '-n', namespace]);
  const data = secret['data']?.[key];
  if (typeof data !== 'string') throw new Error(`secret ${namespace}/${name} has no key ${key}`);
  return Buffer.from(data, 'base64').toString('utf8');
}

/** What the pod's env says, resolved the way the kubelet would: literal values and secretKeyRefs. */
function resolveEnv(plane: ControlPlane, namespace: string, container: Json): Record<string, string> {
  const out: Record<string, string> = {};
  for (const variable of (container['env'] ?? []) as Json[]) {
    if (typeof variable['value'] === 'string') out[variable['name']] = variable['value'];
    const ref = variable['valueFrom']?.['secretKeyRef'];
    if (ref) out[variable['name']] = secretValue(plane, namespace, ref['name'], ref['key']);
  }
  return out;
}


async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'demomail-demo-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));

  step('control-plane binaries (built once from Go modules, then cached)');
  const binDir = lastLine('bash', ['scripts/control-plane.sh']);
  info(binDir);
  const jar = lastLine('bash', ['scripts/greenmail-jar.sh']);
  info(jar);

  step('start etcd + kube-apiserver + kube-controller-manager on 127.0.0.1');
  const plane = await startControlPlane({ binDir });
  cleanups.push(() => plane.stop());
  info(`API server ${plane.server}\nkubeconfig ${plane.kubeconfigPath}`);

  step('kubectl apply -k manifests/ (and the example namespace, labelled demomail/injection=enabled)');
  info(kubectlOk(plane, ['apply', '-k', join(repo, 'manifests')]).trim());
  const example = readFileSync(join(repo, 'examples/civicrm-demo.yaml'), 'utf8');
  const [namespaceDoc] = example.split(/^---$/m);
  info(kubectlOk(plane, ['apply', '-f', '-'], namespaceDoc).trim());

  step('demomail bootstrap, as the demomail-bootstrap ServiceAccount (its own token, its own RBAC)');
  const token = kubectlOk(plane, ['create', 'token', 'demomail-bootstrap', '-n', 'demomail', '--duration', '1h']).trim();
  const saKubeconfig = join(work, 'bootstrap.kubeconfig');
  writeFileSync(saKubeconfig, plane.kubeconfigFor(token), { mode: 0o600 });
  const bootstrapStart = Date.now();
  info(runDemomail(['bootstrap', '--kubeconfig', saKubeconfig]).trim());
  info(`bootstrap took ${((Date.now() - bootstrapStart) / 1000).toFixed(1)}s`);

  step('start demomail webhook locally; the API server reaches it through the production service: reference');
  const tlsDir = join(work, 'webhook-tls');
  mkdirSync(tlsDir, { recursive: true });
  writeFileSync(join(tlsDir, 'tls.crt'), secretValue(plane, 'demomail', 'demomail-webhook-tls', 'tls.crt'));
  writeFileSync(join(tlsDir, 'tls.key'), secretValue(plane, 'demomail', 'demomail-webhook-tls', 'tls.key'), { mode: 0o600 });
  writeFileSync(join(tlsDir, 'ca.crt'), kubectlJson(plane, ['get', 'configmap', 'demomail-ca', '-n', 'demomail'])['data']['ca.crt']);
  const port = await freePort();
  const webhook: ChildProcess = spawn(
    process.execPath,
    [cli, 'webhook', '--cert', join(tlsDir, 'tls.crt'), '--key', join(tlsDir, 'tls.key'), '--ca-file', join(tlsDir, 'ca.crt'), '--port', String(port), '--host', '127.0.0.1'],
    { env: { ...process.env, DEMOMAIL_DRAIN_SECONDS: '0', DEMOMAIL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  cleanups.push(
    () =>
      new Promise<void>((done) => {
        if (webhook.exitCode !== null) return done();
        webhook.once('exit', () => done());
        webhook.kill('SIGTERM');
      }),
  );
  // An ExternalName Service keeps the webhook configuration's production `service:` reference (and
  // the serving certificate's NAME.NS.svc name) while the process runs here, on the given port.
  kubectlOk(plane, ['delete', 'service', 'demomail-webhook', '-n', 'demomail', '--ignore-not-found']);
  kubectlOk(plane, ['create', 'service', 'externalname', 'demomail-webhook', '-n', 'demomail', '--external-name', 'localhost']);
  const mwc = kubectlJson(plane, ['get', 'mutatingwebhookconfiguration', 'demomail']);
  const portPatch = (mwc['webhooks'] as Json[]).map((_: Json, i: number) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig/service/port`, value: port }));
  kubectlOk(plane, ['patch', 'mutatingwebhookconfiguration', 'demomail', '--type', 'json', '-p', JSON.stringify(portPatch)]);
  info(`webhook on https://127.0.0.1:${port}/mutate, caBundle written by the bootstrap`);

  step('start GreenMail with exactly the options of the rendered Deployment demomail-mailserver');
  const deployment = kubectlJson(plane, ['get', 'deployment', 'demomail-mailserver', '-n', 'demomail']);
  const secrets = (kubectlJson(plane, ['get', 'secrets', '-n', 'demomail'])['items'] as Json[]).filter((s) => String(s['metadata']['name']).startsWith('demomail-'));
  const greenmail: RunningGreenmail = await startGreenmail({ deployment, secrets, jar });
  cleanups.push(() => greenmail.stop());
  info(`IMAPS 127.0.0.1:${greenmail.ports.imaps} (GreenMail's SMTP on 127.0.0.1:${greenmail.ports.smtp}, for the gateway only)`);

  step('start demomail gateway as container "gateway" of the same Deployment (SMTP front, routing, simulated bounces)');
  const configData = kubectlJson(plane, ['get', 'configmap', 'demomail-config', '-n', 'demomail'])['data'] as Record<string, string>;
  const gateway = await startGatewayProcess({ deployment, secrets, configData, cli, greenmail, log: (line) => (line.startsWith('gateway launcher:') ? info(line) : gatewayLines.push(line)), extraEnv: { DEMOMAIL_LOG_LEVEL: 'warn', ...demoRunMarker() } });
  cleanups.push(() => gateway.stop());
  const viewerUrl = `http://127.0.0.1:${gateway.ports.http}/`;
  info(`submission (STARTTLS) 127.0.0.1:${gateway.ports.submission}, SMTPS 127.0.0.1:${gateway.ports.smtps}, SMTP 127.0.0.1:${gateway.ports.smtp}, HTTP http://127.0.0.1:${gateway.ports.http}/metrics`);
  info(`mail viewer: ${viewerUrl}  (every message the demo sends shows up there)`);

  step('create the opted-in example Deployment (examples/civicrm-demo.yaml)');
  info(kubectlOk(plane, ['apply', '-f', join(repo, 'examples/civicrm-demo.yaml')]).trim());
  const pod = await waitFor('a pod of Deployment civicrm', () => {
    const items = kubectlJson(plane, ['get', 'pods', '-n', 'civicrm-demo', '-l', 'app.kubernetes.io/name=civicrm'])['items'] as Json[];
    return items[0];
  }, 60_000);
  const podName = String(pod['metadata']['name']);
  const init = (pod['spec']['initContainers'] as Json[] | undefined)?.[0];
  const app = (pod['spec']['containers'] as Json[])[0]!;
  if (!init || init['name'] !== 'demomail-ca-init') throw new Error(`pod ${podName} was not injected: no demomail-ca-init init container`);
  info(`pod civicrm-demo/${podName} (created by the ReplicaSet controller, admitted through the webhook):`);
  info(`  annotation demomail/status: ${pod['metadata']['annotations']?.['demomail/status']}`);
  info(`  volume: ${JSON.stringify((pod['spec']['volumes'] as Json[]).find((v) => v['name'] === 'demomail-ca'))}`);
  info(`  initContainers[0]: ${init['name']} ${JSON.stringify(init['args'] ?? init['command'])}`);
  info(`  ${app['name']} mounts: ${JSON.stringify(app['volumeMounts'])}`);
  info(`  ${app['name']} env: ${(app['env'] as Json[]).map((e) => e['name']).join(', ')}`);

  step("run the pod's init container command (demomail install-ca) with the pod's own env");
  const caDir = join(work, 'etc-demomail');
  const initEnv = resolveEnv(plane, 'civicrm-demo', init);
  const initArgs = ((init['args'] ?? []) as string[]).map((a) => (a === '/etc/demomail' ? caDir : a));
  info(runDemomail(initArgs, { DEMOMAIL_CA_PEM: initEnv['DEMOMAIL_CA_PEM'] ?? '' }).trim());
  const bundle = readFileSync(join(caDir, 'ca-bundle.crt'));

  step('send a mail over 587 with STARTTLS through the gateway and read it back over IMAPS, with only the injected settings');
  const env = resolveEnv(plane, 'civicrm-demo', app);
  for (const key of ['DEMOMAIL_SMTP_HOST', 'DEMOMAIL_SMTP_USERNAME', 'DEMOMAIL_SMTP_PASSWORD', 'DEMOMAIL_IMAP_HOST', 'DEMOMAIL_IMAP_USERNAME', 'DEMOMAIL_IMAP_PASSWORD']) {
    if (!env[key]) throw new Error(`the injected env of ${podName} has no usable ${key}`);
  }
  // No cluster DNS here: connect to the local ports the Services map to, but verify the certificate
  // for the injected host name (smtpdemo.demomail.svc.cluster.local) against the injected bundle.
  const subject = `demomail demo ${new Date().toISOString()}`;
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: gateway.ports.submission,
    secure: false,
    requireTLS: true,
    auth: { user: env['DEMOMAIL_SMTP_USERNAME']!, pass: env['DEMOMAIL_SMTP_PASSWORD']! },
    tls: { ca: bundle, servername: env['DEMOMAIL_SMTP_HOST']!, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
  });
  const sent = await transport.sendMail({
    from: env['DEMOMAIL_SMTP_USERNAME'],
    to: env['DEMOMAIL_IMAP_USERNAME'],
    subject,
    text: 'Sent by npm run demo through smtpdemo:587 with STARTTLS, verified with the CA that demomail injected.',
  });
  info(`${env['DEMOMAIL_SMTP_HOST']}:587 (STARTTLS) answered "${sent.response}" for ${env['DEMOMAIL_IMAP_USERNAME']}`);

  const imap = new ImapFlow({
    host: '127.0.0.1',
    port: greenmail.ports.imaps,
    secure: true,
    servername: env['DEMOMAIL_IMAP_HOST']!,
    auth: { user: env['DEMOMAIL_IMAP_USERNAME']!, pass: env['DEMOMAIL_IMAP_PASSWORD']! },
    tls: { ca: bundle, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
    logger: false,
  });
  await imap.connect();
  const found = await waitFor('the mail in INBOX', async () => {
    const lock = await imap.getMailboxLock('INBOX');
    try {
      const uids = await imap.search({ subject }, { uid: true });
      return uids && uids.length > 0 ? uids : undefined;
    } finally {
      lock.release();
    }
  }, 20_000);
  info(`IMAPS ${env['DEMOMAIL_IMAP_HOST']}:${env['DEMOMAIL_IMAP_PORT']}: found "${subject}" (UID ${found.join(',')}) in INBOX`);

  step('a CiviMail-like mailing to hard-1@bounce.demomail.test: its simulated bounce arrives in the IMAP account');
  // CiviMail's return path with the Mail Account localpart "imap+": the gateway delivers the DSN to imap@.
  const returnPath = `imap+b.1.1.${Date.now().toString(16).padStart(16, '0').slice(-16)}@${env['DEMOMAIL_DOMAIN'] ?? 'demomail.test'}`;
  const mailing = `demomail demo mailing ${new Date().toISOString()}`;
  await transport.sendMail({
    envelope: { from: returnPath, to: ['hard-1@bounce.demomail.test'] },
    from: env['DEMOMAIL_SMTP_USERNAME'],
    to: 'hard-1@bounce.demomail.test',
    subject: mailing,
    text: 'A mailing to an address that does not exist.',
  });
  transport.close();
  info(`sent "${mailing}" with return path ${returnPath}`);
  const bounceStarted = Date.now();
  const bounce = await waitFor('the DSN in INBOX', async () => {
    const lock = await imap.getMailboxLock('INBOX');
    try {
      for await (const message of imap.fetch('1:*', { source: true })) {
        const source = message.source?.toString('utf8') ?? '';
        if (/multipart\/report/i.test(source) && source.includes(mailing)) return source;
      }
      return undefined;
    } finally {
      lock.release();
    }
  }, 20_000);
  await imap.logout();
  const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'mi').exec(bounce)?.[1]?.trim() ?? '?';
  info(`after ${Date.now() - bounceStarted} ms: "${header('Subject')}" to ${header('To')}, Status: ${header('Status')} (Delivered-To: ${header('Delivered-To')})`);

  out(
    `\nDEMO OK in ${((Date.now() - started) / 1000).toFixed(1)}s: the pod was injected on create, trusted the mail CA, sent over 587 with STARTTLS, read back over IMAPS, and saw its simulated bounce.\n` +
      `Mail viewer: ${viewerUrl}\n`,
  );
  if (keep) {
    const account = (name: string) => ({ username: secretValue(plane, 'demomail', name, 'username'), password: secretValue(plane, 'demomail', name, 'password') });
    const state = {
      viewer: viewerUrl,
      smtp: { host: '127.0.0.1', ports: gateway.ports, certificateNames: [env['DEMOMAIL_SMTP_HOST'], 'localhost'] },
      imap: { host: '127.0.0.1', ports: { imap: greenmail.ports.imap, imaps: greenmail.ports.imaps }, certificateNames: [env['DEMOMAIL_IMAP_HOST'], 'localhost'] },
      accounts: { smtp: account('demomail-smtp'), imap: account('demomail-imap'), imap2: account('demomail-imap2') },
      caFile: join(caDir, 'ca-bundle.crt'),
      kubeconfig: plane.kubeconfigPath,
      pid: process.pid,
    };
    mkdirSync(dirname(STATE_FILE), { recursive: true });
    writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 }); // holds the demo's passwords
    cleanups.push(() => rmSync(STATE_FILE, { force: true }));
    out(
      `\n--keep: everything stays up until you press Ctrl-C (or kill ${process.pid}).\n  state (ports, accounts, CA file): ${STATE_FILE}\n  mail viewer: ${viewerUrl}\n  export KUBECONFIG=${plane.kubeconfigPath}\n  ${join(binDir, 'kubectl')} get pods -A\n  CA bundle: ${join(caDir, 'ca-bundle.crt')}\n  submission 127.0.0.1:${gateway.ports.submission}  SMTPS 127.0.0.1:${gateway.ports.smtps}  IMAPS 127.0.0.1:${greenmail.ports.imaps}  (certificate names: ${env['DEMOMAIL_SMTP_HOST']}, localhost)\n  IMAP login ${env['DEMOMAIL_IMAP_USERNAME']}, password: kubectl -n demomail get secret demomail-imap -o jsonpath='{.data.password}' | base64 -d\n`,
    );
    await new Promise<never>(() => {}); // until a signal: stop() exits
  }
}

/** DEMOMAIL_DEMO_RUN passed on to every child (a test finds leftovers by it in /proc/PID/environ). */
function demoRunMarker(): Record<string, string> {
  const marker = process.env['DEMOMAIL_DEMO_RUN'];
  return marker ? { DEMOMAIL_DEMO_RUN: marker } : {};
}

async function teardown(): Promise<void> {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (err) {
      process.stderr.write(`cleanup: ${(err as Error).message}\n`);
    }
  }
}

/** Names the port when something could not listen because the port is taken. */
export function portInUseHint(message: string): string | undefined {
  if (!/EADDRINUSE|address already in use/i.test(message)) return undefined;
  const port = /(?:[\d.]+|localhost|\[[\da-f:]*\]):(\d{2,5})\b/i.exec(message)?.[1] ?? /\bport (\d{2,5})\b/i.exec(message)?.[1];
  return port
    ? `port ${port} is already in use (a previous demo or test run still running?): \`ss -ltnp 'sport = :${port}'\` shows which process holds it`
    : 'a port is already in use (a previous demo or test run still running?): `ss -ltnp` lists the listeners';
}

let stopping: Promise<never> | undefined;
/** The only way out: stop everything started (once, in reverse order), then exit with `code`. */
function stop(code: number, why?: string): Promise<never> {
  stopping ??= (async () => {
    if (why) process.stderr.write(`\n${why}: stopping everything the demo started\n`);
    await teardown();
    process.exit(code);
  })();
  return stopping;
}

process.stderr.on('error', () => {}); // `2>&1 | head`: stderr is the closed pipe too
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  outputClosed = true;
  if (err.code === 'EPIPE') void stop(1, 'output closed (EPIPE)');
  else void stop(1, `stdout: ${err.message}`);
});
process.once('SIGINT', () => void stop(keep && stepNumber > 0 ? 0 : 130, 'SIGINT'));
process.once('SIGTERM', () => void stop(keep ? 0 : 143, 'SIGTERM'));
process.once('SIGHUP', () => void stop(129, 'SIGHUP'));

try {
  await main();
  await stop(0);
} catch (err) {
  const message = (err as Error).message;
  process.stderr.write(`\nDEMO FAILED at step ${stepNumber}: ${message}\n`);
  const hint = portInUseHint(message);
  if (hint) process.stderr.write(`${hint}\n`);
  if (gatewayLines.length > 0) process.stderr.write(`gateway log (last lines):\n${gatewayLines.slice(-20).join('\n')}\n`);
  await stop(1);
}
