#!/usr/bin/env node
// `demomail <command>`: one binary, four roles (DESIGN §1). This file only parses arguments,
// loads settings and hands over; every decision lives in the modules it calls.
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { settingsFromEnv, injectionSettings, type Settings } from './config.js';
import { GREENMAIL_PORTS } from './bootstrap/greenmail.js';
import { GATEWAY_PORTS } from './gateway/ports.js';

const VERSION = '0.1.0';

/** Reads `--config FILE`: a YAML map of demomail-config keys, or the ConfigMap manifest itself. */
export async function loadSettings(configFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Settings> {
  let base: Record<string, string> = {};
  if (configFile) {
    let text: string;
    try {
      text = await readFile(configFile, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --config ${configFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    // Loaded only here: yaml costs ~9 MiB of RSS that a long-running `demomail webhook` without --config never needs.
    const { parse: parseYaml } = await import('yaml');
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      throw new UsageError(`--config ${configFile} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    const map = isRecord(doc) && doc['kind'] === 'ConfigMap' ? doc['data'] : doc;
    if (map !== null && map !== undefined && !isRecord(map)) {
      throw new UsageError(`--config ${configFile} must be a map of settings (KEY: value) or a ConfigMap manifest`);
    }
    for (const [key, value] of Object.entries(map ?? {})) base[key] = String(value);
  }
  return settingsFromEnv(env, base);
}

export class UsageError extends Error {
  override name = 'UsageError';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number 0-65535');
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 3600) throw new InvalidArgumentError('must be a number of seconds, more than 0 and at most 3600');
  return n;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readCaFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * The CA exactly as the webhook injects it (certificate blocks only, normalised), so `demomail inject`
 * and the webhook give byte-identical pods for the same file, comments and CRLF line ends included.
 */
async function normalisedCaPem(text: string, path: string): Promise<string> {
  const { splitPemCertificates } = await import('./pki/certificates.js');
  try {
    return splitPemCertificates(text).join('');
  } catch (err) {
    throw new UsageError(`--ca-file ${path}: ${(err as Error).message}; pass the mail CA certificate (ca.crt of ConfigMap demomail-ca)`);
  }
}

export function buildProgram(): Command {
  const program = new Command('demomail')
    .description('Throwaway SMTP/IMAP mail server for Kubernetes demos, and the webhook that makes pods trust it')
    .version(VERSION)
    .showHelpAfterError();

  program
    .command('webhook')
    .description('run the HTTPS mutating admission webhook (POST /mutate, /livez, /readyz, /metrics)')
    .addOption(new Option('--cert <file>', 'serving certificate (PEM)').env('DEMOMAIL_WEBHOOK_CERT').makeOptionMandatory())
    .addOption(new Option('--key <file>', 'serving private key (PEM)').env('DEMOMAIL_WEBHOOK_KEY').makeOptionMandatory())
    .addOption(new Option('--ca-file <file>', 'mail CA to inject into pods (PEM)').env('DEMOMAIL_CA_FILE').makeOptionMandatory())
    .addOption(new Option('--port <n>', 'listen port').env('DEMOMAIL_WEBHOOK_PORT').default(10250).argParser(port))
    .addOption(new Option('--host <addr>', 'listen address').env('DEMOMAIL_WEBHOOK_HOST').default('0.0.0.0'))
    .option('--config <file>', 'settings file (YAML map or the demomail-config ConfigMap)')
    .action(async (opts: { cert: string; key: string; caFile: string; port: number; host: string; config?: string }) => {
      const settings = await loadSettings(opts.config);
      const { runWebhook } = await import('./webhook/main.js');
      await runWebhook({ certFile: opts.cert, keyFile: opts.key, caFile: opts.caFile, port: opts.port, host: opts.host, settings });
    });

  program
    .command('gateway')
    .description('run the mail gateway: SMTP 2525/2587/2465 (STARTTLS, AUTH, routing, simulated bounces) and HTTP 8025 (viewer, /metrics)')
    .addOption(new Option('--cert <file>', 'serving certificate (PEM, watched)').env('DEMOMAIL_GATEWAY_CERT').default('/tls/tls.crt'))
    .addOption(new Option('--key <file>', 'serving private key (PEM, watched)').env('DEMOMAIL_GATEWAY_KEY').default('/tls/tls.key'))
    .addOption(new Option('--host <addr>', 'listen address').env('DEMOMAIL_GATEWAY_HOST').default('0.0.0.0'))
    .addOption(new Option('--smtp-port <n>', 'SMTP (STARTTLS, AUTH optional)').env('DEMOMAIL_GATEWAY_SMTP_PORT').default(GATEWAY_PORTS.smtp).argParser(port))
    .addOption(new Option('--submission-port <n>', 'submission (AUTH after STARTTLS)').env('DEMOMAIL_GATEWAY_SUBMISSION_PORT').default(GATEWAY_PORTS.submission).argParser(port))
    .addOption(new Option('--smtps-port <n>', 'implicit TLS, AUTH required').env('DEMOMAIL_GATEWAY_SMTPS_PORT').default(GATEWAY_PORTS.smtps).argParser(port))
    .addOption(new Option('--http-port <n>', 'viewer, /metrics, /livez, /readyz').env('DEMOMAIL_GATEWAY_HTTP_PORT').default(GATEWAY_PORTS.http).argParser(port))
    .addOption(new Option('--greenmail-host <addr>', "GreenMail's SMTP and API host").env('DEMOMAIL_GREENMAIL_HOST').default('127.0.0.1'))
    .addOption(new Option('--greenmail-smtp-port <n>', "GreenMail's SMTP port").env('DEMOMAIL_GREENMAIL_SMTP_PORT').default(GREENMAIL_PORTS.smtp).argParser(port))
    .addOption(new Option('--greenmail-api-port <n>', "GreenMail's REST API port").env('DEMOMAIL_GREENMAIL_API_PORT').default(GREENMAIL_PORTS.api).argParser(port))
    .addOption(new Option('--idle-timeout <seconds>', 'idle time allowed between SMTP commands').env('DEMOMAIL_GATEWAY_IDLE_TIMEOUT').default(60).argParser(seconds))
    .addOption(new Option('--ui-auth-dir <dir>', 'mounted Secret demomail-ui-auth (username, password); basic auth when present').env('DEMOMAIL_UI_AUTH_DIR'))
    .option('--config <file>', 'settings file (YAML map or the demomail-config ConfigMap)')
    .action(
      async (opts: {
        cert: string;
        key: string;
        host: string;
        smtpPort: number;
        submissionPort: number;
        smtpsPort: number;
        httpPort: number;
        greenmailHost: string;
        greenmailSmtpPort: number;
        greenmailApiPort: number;
        idleTimeout: number;
        uiAuthDir?: string;
        config?: string;
      }) => {
        const settings = await loadSettings(opts.config);
        const { accountsFromEnv } = await import('./gateway/accounts.js');
        let accounts;
        try {
          accounts = accountsFromEnv(process.env);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        if (accounts.length === 0) {
          throw new UsageError('no SMTP accounts: set DEMOMAIL_SMTP_USERNAME/_PASSWORD (and _IMAP_, _IMAP2_) from the credential Secrets');
        }
        const { runGateway } = await import('./gateway/main.js');
        await runGateway({
          settings,
          host: opts.host,
          ports: { smtp: opts.smtpPort, submission: opts.submissionPort, smtps: opts.smtpsPort, http: opts.httpPort },
          greenmail: { host: opts.greenmailHost, smtpPort: opts.greenmailSmtpPort, apiPort: opts.greenmailApiPort },
          accounts,
          tls: { certFile: opts.cert, keyFile: opts.key },
          limits: { socketTimeoutMs: opts.idleTimeout * 1000 },
          ...(opts.uiAuthDir ? { uiAuthDir: opts.uiAuthDir } : {}),
        });
      },
    );

  program
    .command('bootstrap')
    .description('reconcile PKI, credentials, mail server, services and the webhook caBundle (idempotent)')
    .option('--config <file>', 'settings file (YAML map or the demomail-config ConfigMap)')
    .option('--output <dir>', 'write the desired objects as YAML files instead of applying them')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster, then KUBECONFIG)')
    .action(async (opts: { config?: string; output?: string; kubeconfig?: string }) => {
      const settings = await loadSettings(opts.config);
      const { runBootstrap } = await import('./bootstrap/main.js');
      await runBootstrap({ settings, outputDir: opts.output, kubeconfig: opts.kubeconfig });
    });

  program
    .command('cleanup')
    .description('delete what the bootstrap created, credential copies in other namespaces included (before uninstalling)')
    .option('--config <file>', 'settings file (YAML map or the demomail-config ConfigMap)')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster, then KUBECONFIG)')
    .option('--dry-run', 'list what would be deleted, delete nothing')
    .action(async (opts: { config?: string; kubeconfig?: string; dryRun?: boolean }) => {
      const settings = await loadSettings(opts.config);
      const { runCleanup } = await import('./bootstrap/cleanup.js');
      await runCleanup({ settings, kubeconfig: opts.kubeconfig, dryRun: opts.dryRun === true });
    });

  program
    .command('rotate-ca')
    .description('replace the mail CA now (e.g. one without Name Constraints); the previous CA stays trusted while valid')
    .option('--config <file>', 'settings file (YAML map or the demomail-config ConfigMap)')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster, then KUBECONFIG)')
    .action(async (opts: { config?: string; kubeconfig?: string }) => {
      const settings = await loadSettings(opts.config);
      const { runBootstrap, restartAdvice } = await import('./bootstrap/main.js');
      const result = await runBootstrap({ settings, kubeconfig: opts.kubeconfig, rotateCa: true });
      process.stdout.write(`${restartAdvice(result.labelledNamespaces)}\n`);
    });

  program
    .command('install-ca')
    .description('write ca.crt, ca-bundle.crt and php/zz-demomail.ini from $DEMOMAIL_CA_PEM (the injected init container)')
    .addOption(new Option('--dir <dir>', 'target directory').env('DEMOMAIL_CA_DIR').default('/etc/demomail'))
    .addOption(
      new Option('--system-bundle <file>', 'system CA bundle to merge')
        .env('DEMOMAIL_SYSTEM_CA_BUNDLE')
        .default('/etc/ssl/certs/ca-certificates.crt'),
    )
    .action(async (opts: { dir: string; systemBundle: string }) => {
      const caPem = process.env['DEMOMAIL_CA_PEM'];
      if (!caPem || caPem.trim() === '') {
        throw new UsageError('DEMOMAIL_CA_PEM is empty: this command runs as the injected init container, which gets the mail CA in that variable');
      }
      const { installCa } = await import('./trust/install-ca.js');
      const written = await installCa({ dir: opts.dir, caPem, systemBundlePath: opts.systemBundle });
      for (const file of written) process.stdout.write(`wrote ${file}\n`);
    });

  program
    .command('inject')
    .description('inject offline: YAML in, injected YAML out (same code as the webhook)')
    .requiredOption('-f, --filename <file>', 'manifest file, or - for stdin')
    .addOption(new Option('--ca-file <file>', 'mail CA PEM to inject').env('DEMOMAIL_CA_FILE').makeOptionMandatory())
    .option('-n, --namespace <ns>', 'namespace for objects that have none')
    .option('--config <file>', 'settings file (YAML map or the demomail-config ConfigMap)')
    .action(async (opts: { filename: string; caFile: string; namespace?: string; config?: string }) => {
      const settings = await loadSettings(opts.config);
      const caPem = await normalisedCaPem(await readCaFile(opts.caFile, '--ca-file'), opts.caFile);
      const text = opts.filename === '-' ? await readStdin() : await readCaFile(opts.filename, '-f');
      const { injectManifests } = await import('./inject/manifests.js');
      const out = injectManifests(text, injectionSettings(settings, caPem), {
        namespace: opts.namespace,
        source: opts.filename === '-' ? '<stdin>' : opts.filename,
        onWarning: (warning: string) => process.stderr.write(`demomail inject: warning: ${warning}\n`),
      });
      process.stdout.write(out);
    });

  program
    .command('dev-certs')
    .description('write local development certificates (mail CA, webhook CA and a localhost serving cert)')
    .option('--dir <dir>', 'target directory', 'certs')
    .action(async (opts: { dir: string }) => {
      const { writeDevCerts } = await import('./pki/dev-certs.js');
      for (const file of await writeDevCerts(opts.dir)) process.stdout.write(`wrote ${file}\n`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    const error = err as Error & { code?: string; exitCode?: number };
    if (error.code?.startsWith('commander.')) {
      // commander already printed help/version/usage text
      return error.exitCode ?? 2;
    }
    const command = argv[2] ?? '';
    process.stderr.write(`demomail ${command}: ${error.message}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

// Run only as the entry point, so tests can import buildProgram/loadSettings.
const entry = process.argv[1] ?? '';
if (entry.endsWith('/cli.js') || entry.endsWith('/demomail')) {
  const code = await main(process.argv);
  // The webhook and the gateway resolve only after a drain; every other command is done here.
  process.exitCode = code;
}
