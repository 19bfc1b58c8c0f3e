// `demomail bootstrap`: read → plan (pure) → apply what differs. Idempotent: a run that finds everything
// valid makes zero writes. Logs one line per decision and per object; never a secret value.
import type { Settings } from '../config.js';
import { CopyFailures, applyPlan, readState, type ApplyReport } from './apply.js';
import { DEFAULT_RETRY, httpTransport, isStaleRead, kubeClient, loadKubeConfig, type KubeTransport, type RetryPolicy } from './kube.js';
import { desiredObjects, randomAlphanumericPassword, type Decision } from './plan.js';
import { writeObjects } from './output.js';

export interface BootstrapOptions {
  settings: Settings;
  /** Write the desired objects as YAML files here instead of touching a cluster. */
  outputDir?: string;
  /** kubeconfig path; default: in-cluster or KUBECONFIG. */
  kubeconfig?: string;
  /** One line per event; default: stdout. */
  log?: (line: string) => void;
  /** Clock for the PKI rules; default: now. */
  now?: () => Date;
  randomPassword?: () => string;
  retry?: RetryPolicy;
  /** `demomail rotate-ca`: replace the mail CA although it is valid. */
  rotateCa?: boolean;
  /** Replaces HTTP to the API server (tests). */
  transport?: KubeTransport;
}

export interface BootstrapResult {
  decisions: Decision[];
  reports: ApplyReport[];
  writes: number;
  durationMs: number;
  /** Files written with --output. */
  files: string[];
  /** Namespaces labelled demomail/injection=enabled at the last read. */
  labelledNamespaces: string[];
}

/**
 * How often a plan is rebuilt when another run created or changed an object between our read and our
 * write. Each re-plan sees at least one more of the six Secrets holding generated material, so seven
 * rounds always suffice; one more for a renewal racing a creation.
 */
const MAX_PLANS = 8;

export async function runBootstrap(opts: BootstrapOptions): Promise<BootstrapResult> {
  const started = performance.now();
  const log = opts.log ?? ((line: string) => process.stdout.write(`bootstrap: ${line}\n`));
  const now = opts.now ?? (() => new Date());
  const randomPassword = opts.randomPassword ?? (() => randomAlphanumericPassword());
  const settings = opts.settings;
  const logDecisions = (decisions: Decision[], warnings: string[]) => {
    for (const d of decisions) log(`${d.object}: ${d.item} ${d.action} — ${d.reason}`);
    for (const w of warnings) log(`WARNING ${w}`);
  };

  if (opts.outputDir !== undefined) {
    const plan = desiredObjects(settings, { objects: {}, labelledNamespaces: [] }, { now: now(), randomPassword });
    logDecisions(plan.decisions, plan.warnings);
    const files = await writeObjects(opts.outputDir, plan.objects, settings);
    for (const file of files) log(`wrote ${file}`);
    log(`no cluster touched; secret material in ${opts.outputDir} was generated fresh`);
    return { decisions: plan.decisions, reports: [], writes: 0, durationMs: performance.now() - started, files, labelledNamespaces: [] };
  }

  const transport = opts.transport ?? httpTransport(loadKubeConfig(opts.kubeconfig));
  const client = kubeClient(transport, opts.retry ?? DEFAULT_RETRY, undefined, (error, attempt, delayMs) =>
    log(`${error.message}; retry ${attempt} in ${delayMs} ms`),
  );
  for (let round = 1; ; round++) {
    const read = await readState(client, settings);
    // Rotate in the first round only: a re-plan after AlreadyExists must reuse the CA just written.
    const plan = desiredObjects(settings, read.state, { now: now(), randomPassword, rotateCa: opts.rotateCa === true && round === 1 });
    logDecisions(plan.decisions, plan.warnings);
    try {
      const reports = await applyPlan(client, settings, plan, read, log);
      const count = (outcome: ApplyReport['outcome']) => reports.filter((r) => r.outcome === outcome).length;
      const durationMs = performance.now() - started;
      log(
        `done in ${(durationMs / 1000).toFixed(2)}s: ${count('created')} created, ${count('updated')} updated, ${count('unchanged')} unchanged, ${count('skipped')} skipped, ${count('deleted')} deleted; ${client.writes} write(s)`,
      );
      return { decisions: plan.decisions, reports, writes: client.writes, durationMs, files: [], labelledNamespaces: read.state.labelledNamespaces };
    } catch (err) {
      if (isStaleRead(err) && round < MAX_PLANS) {
        log(`${(err as Error).message}; another run created or changed it since it was read: reading again and re-planning (round ${round + 1})`);
        continue;
      }
      if (err instanceof CopyFailures) {
        for (const f of err.failures) log(`FAILED namespace ${f.namespace}: ${f.message}`);
        log(`done in ${((performance.now() - started) / 1000).toFixed(2)}s with ${err.failures.length} failed namespace(s); ${client.writes} write(s)`);
      }
      throw err;
    }
  }
}

/** What `demomail rotate-ca` tells the person: which pods still trust only the old CA. */
export function restartAdvice(labelledNamespaces: string[]): string {
  const namespaces = labelledNamespaces.length === 0 ? '(none labelled now)' : labelledNamespaces.join(', ');
  return [
    'mail CA replaced; the mail server certificate is re-issued by the new CA. Pods injected before now trust only the old CA: restart them.',
    `  every pod in the namespaces labelled demomail/injection=enabled: ${namespaces} (e.g. kubectl -n NS rollout restart deployment)`,
    '  pods labelled demomail/inject=true elsewhere: kubectl get pods -A -l demomail/inject=true',
    'The mail server rolls on its own (its certificate changed).',
  ].join('\n');
}
