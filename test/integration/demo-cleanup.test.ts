// `npm run demo` leaves no process behind however it ends: its output closed (`| head`, EPIPE) or
// SIGTERM. Every child inherits DEMOMAIL_DEMO_RUN=<marker>; leftovers are found by it in /proc.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ensureBuilt, greenmailJar, ROOT, unavailable } from '../helpers/greenmail.js';

/** PIDs whose environment carries the marker (processes of other users or already gone are skipped). */
function processesWith(marker: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`DEMOMAIL_DEMO_RUN=${marker}`)) {
        found.push({ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, 'latin1').replace(/\0/g, ' ').slice(0, 120) });
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

async function leftovers(marker: string, withinMs: number): Promise<{ pid: number; command: string }[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const found = processesWith(marker);
    if (found.length === 0 || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
}

t.test('the demo leaves no process behind', async (t) => {
  if (!existsSync('/proc/self/environ')) return unavailable(t, 'no /proc: this check reads /proc/PID/environ (Linux)');
  if (!greenmailJar(t)) return;
  if (spawnSync('bash', [join(ROOT, 'scripts', 'control-plane.sh')], { stdio: 'ignore', timeout: 1_800_000 }).status !== 0) {
    return unavailable(t, 'scripts/control-plane.sh failed: the control-plane binaries are needed (npm run e2e:binaries)');
  }
  ensureBuilt();
  const demo = join(ROOT, 'dist', 'scripts', 'demo.js');

  t.test('output closed, as in npm run demo | head', async (t) => {
    const marker = randomBytes(8).toString('hex');
    // Like `| head -n N`, with N = the line naming the viewer: by then the control plane, the
    // webhook, GreenMail and the gateway all run, and the demo's next write meets a closed pipe.
    const run = spawnSync('bash', ['-c', `"${process.execPath}" "${demo}" 2>&1 | sed '/mail viewer: http/q'`], {
      env: { ...process.env, DEMOMAIL_DEMO_RUN: marker },
      encoding: 'utf8',
      timeout: 180_000,
    });
    t.match(run.stdout.trim().split('\n').at(-1), /mail viewer: http:\/\/127\.0\.0\.1:\d+\//, 'the reader went away after the viewer line');
    const left = await leftovers(marker, 15_000);
    t.same(left, [], 'no process of the demo is left');
    for (const { pid } of left) process.kill(pid, 'SIGKILL');
  });

  t.test('SIGTERM while running', async (t) => {
    const marker = randomBytes(8).toString('hex');
    const child = spawn(process.execPath, [demo], { env: { ...process.env, DEMOMAIL_DEMO_RUN: marker }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    // Once the gateway runs (step "mail viewer: …"), every kind of child exists.
    for (let i = 0; i < 600 && !/mail viewer: http/.test(output) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 200));
    t.match(output, /mail viewer: http:\/\/127\.0\.0\.1:\d+\//, 'the demo prints the viewer URL');
    t.ok(processesWith(marker).length >= 4, 'control plane, webhook, GreenMail and gateway were running');
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
    t.equal(code, 143, 'exit code of a SIGTERM');
    t.match(output, /SIGTERM: stopping everything the demo started/);
    const left = await leftovers(marker, 15_000);
    t.same(left, [], 'no process of the demo is left');
    for (const { pid } of left) process.kill(pid, 'SIGKILL');
  });
});
