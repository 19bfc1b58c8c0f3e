// Property tests over generated pod shapes: the ops always apply (fast-json-patch validation on),
// a second pass is empty, nothing the user wrote is lost or reordered, and hostile JSON never
// produces anything but a plan or an InjectionRefused.
import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1';
import { injectionSettings, settingsFrom, INIT_CONTAINER, MOUNT_PATH, STATUS_ANNOTATION } from '../config.js';
import { planInjection, InjectionRefused, type JsonObject } from './plan.js';
import { desiredEnv } from './template.js';

const CA_PEM = readFileSync(new URL('../../test/fixtures/inject/ca/demomail-test-ca.pem', import.meta.url), 'utf8');
const settings = injectionSettings(settingsFrom({}), CA_PEM);
const NUM_RUNS = 200;

const dnsName = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/).filter((n) => n !== INIT_CONTAINER && n !== 'demomail-ca');
const envName = fc.oneof(
  fc.constantFrom('SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'DEMOMAIL_SMTP_HOST', 'SMTP_USER_SECRET', 'PHP_INI_SCAN_DIR', 'DEMOMAIL_IMAP2_PASSWORD'),
  fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,12}$/),
);
const envEntry = fc.record({
  name: envName,
  value: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
}).map((e) => (e.value === undefined ? { name: e.name, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } } : e));
const mountPath = fc.stringMatching(/^\/[a-z]{1,8}(\/[a-z]{1,8})?$/).filter((p) => !p.startsWith('/etc/demomail'));
// Odd annotation keys: '/', '~', '~1', '~0', unicode; values are strings as in the API.
const annotationKey = fc.oneof(
  fc.constantFrom('a/b', 'c~d', 'e~1f', 'g~0h', 'x/y~z/', '~', '/', 'prometheus.io/scrape'),
  fc.string({ minLength: 1, maxLength: 12 }),
).filter((k) => k !== STATUS_ANNOTATION && k !== '__proto__');

function containerArb(volumeNames: string[]): fc.Arbitrary<JsonObject> {
  return fc.record(
    {
      image: fc.constantFrom('busybox:1.36', 'nginx:1.27', 'php:8.3-fpm'),
      env: fc.oneof(fc.constant(null), fc.array(envEntry, { maxLength: 5 })),
      envFrom: fc.array(fc.record({ configMapRef: fc.record({ name: dnsName }) }), { maxLength: 2 }),
      volumeMounts: fc.oneof(
        fc.constant(null),
        volumeNames.length === 0
          ? fc.constant([])
          : fc.uniqueArray(fc.record({ name: fc.constantFrom(...volumeNames), mountPath, readOnly: fc.boolean() }), {
              maxLength: 3,
              selector: (m) => m.mountPath,
            }),
      ),
      args: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
      restartPolicy: fc.constant('Always'),
      securityContext: fc.record({ runAsNonRoot: fc.boolean(), capabilities: fc.record({ drop: fc.constant(['ALL']) }) }),
    },
    { requiredKeys: ['image'] },
  );
}

const podArb: fc.Arbitrary<JsonObject> = fc
  .record({
    volumeNames: fc.uniqueArray(dnsName, { maxLength: 3 }),
    containerNames: fc.uniqueArray(dnsName, { minLength: 1, maxLength: 6 }),
    initCount: fc.nat({ max: 3 }),
    hasVolumesKey: fc.boolean(),
    annotations: fc.option(fc.dictionary(annotationKey, fc.string({ maxLength: 10 }), { maxKeys: 4 }), { nil: undefined }),
    phpIni: fc.boolean(),
    nameKind: fc.constantFrom('name', 'generateName'),
    namespace: fc.option(fc.constantFrom('shop', 'civi-demo'), { nil: undefined }),
    ephemeral: fc.boolean(),
    seed: fc.integer(),
  })
  .chain((shape) => {
    const initCount = Math.min(shape.initCount, shape.containerNames.length - 1);
    const names = shape.containerNames;
    return fc
      .tuple(...names.map(() => containerArb(shape.volumeNames)))
      .map((bodies) => {
        const built = bodies.map((body, i) => {
          const c: JsonObject = { name: names[i], ...body };
          if (i >= initCount) delete c.restartPolicy; // only init containers can be native sidecars
          return c;
        });
        const spec: JsonObject = { containers: built.slice(initCount) };
        if (initCount > 0) spec.initContainers = built.slice(0, initCount);
        if (shape.hasVolumesKey || shape.volumeNames.length > 0) {
          spec.volumes = shape.volumeNames.map((name, i) => (i % 2 ? { name, configMap: { name } } : { name, emptyDir: {} }));
        }
        if (shape.ephemeral) spec.ephemeralContainers = [{ name: 'debugger', image: 'busybox', targetContainerName: names[initCount] }];
        const metadata: JsonObject = { [shape.nameKind]: shape.nameKind === 'name' ? 'web' : 'web-7d9f-' };
        if (shape.namespace) metadata.namespace = shape.namespace;
        if (shape.annotations !== undefined || shape.phpIni) {
          metadata.annotations = { ...shape.annotations, ...(shape.phpIni ? { 'demomail/php-ini': 'true' } : {}) };
        }
        return { apiVersion: 'v1', kind: 'Pod', metadata, spec };
      });
  });

function injectedOps(pod: JsonObject): Operation[] {
  const plan = planInjection(pod, 'shop', settings);
  if (plan.action !== 'inject') throw new Error(`unexpected skip: ${plan.reason}`);
  return plan.ops;
}
function applied(pod: JsonObject, ops: Operation[]): JsonObject {
  return jsonpatch.applyPatch(structuredClone(pod), ops, true, false).newDocument as JsonObject;
}
// Test navigation of shapes built above.
type Loose = { [k: string]: any };

t.test('ops apply, second pass is empty, user fields survive', async (t) => {
  fc.assert(
    fc.property(podArb, (pod) => {
      const before = JSON.stringify(pod);
      const ops = injectedOps(pod);
      if (JSON.stringify(pod) !== before) throw new Error('input mutated');
      const result = applied(pod, ops) as Loose;
      if (JSON.stringify(injectedOps(result)) !== '[]') throw new Error('second pass not empty');
      if (JSON.stringify(planInjection(pod, 'shop', settings)) !== JSON.stringify(planInjection(structuredClone(pod), 'shop', settings))) {
        throw new Error('not deterministic');
      }
      const original = pod as Loose;
      const wantEnv = desiredEnv(settings, original.metadata.annotations?.['demomail/php-ini'] === 'true');

      // init containers: ours first, theirs after in the same order
      const inits = result.spec.initContainers as Loose[];
      if (inits[0]!.name !== INIT_CONTAINER) throw new Error('ours not first');
      const theirInits = (original.spec.initContainers ?? []) as Loose[];
      if (inits.length !== theirInits.length + 1) throw new Error('init container count');
      const pairs: Array<[Loose, Loose]> = [
        ...theirInits.map((c, i): [Loose, Loose] => [c, inits[i + 1]!]),
        ...(original.spec.containers as Loose[]).map((c, i): [Loose, Loose] => [c, result.spec.containers[i]]),
      ];
      for (const [was, now] of pairs) {
        if (was.name !== now.name) throw new Error(`order changed at ${String(was.name)}`);
        for (const key of Object.keys(was)) {
          if (key === 'env' || key === 'volumeMounts') continue;
          if (JSON.stringify(was[key]) !== JSON.stringify(now[key])) throw new Error(`${String(was.name)}.${key} changed`);
        }
        const oldEnv = (was.env ?? []) as Loose[];
        if (JSON.stringify(now.env.slice(0, oldEnv.length)) !== JSON.stringify(oldEnv)) throw new Error('user env changed');
        for (const e of wantEnv) {
          const userHad = oldEnv.some((u) => u.name === e.name);
          const count = (now.env as Loose[]).filter((x) => x.name === e.name).length;
          if (!userHad && count !== 1) throw new Error(`${String(e.name)} appears ${count} times`);
          if (userHad && count !== oldEnv.filter((u) => u.name === e.name).length) throw new Error(`user's ${String(e.name)} duplicated`);
        }
        const oldMounts = (was.volumeMounts ?? []) as Loose[];
        if (JSON.stringify(now.volumeMounts.slice(0, oldMounts.length)) !== JSON.stringify(oldMounts)) throw new Error('user mounts changed');
        if ((now.volumeMounts as Loose[]).filter((m) => m.mountPath === MOUNT_PATH).length !== 1) throw new Error('mount count');
      }
      const oldVolumes = (original.spec.volumes ?? []) as Loose[];
      if (JSON.stringify(result.spec.volumes.slice(0, oldVolumes.length)) !== JSON.stringify(oldVolumes)) throw new Error('volumes changed');
      if (JSON.stringify(result.spec.ephemeralContainers) !== JSON.stringify(original.spec.ephemeralContainers)) throw new Error('ephemeral touched');
      for (const [k, v] of Object.entries((original.metadata.annotations ?? {}) as Loose)) {
        if (result.metadata.annotations[k] !== v) throw new Error(`annotation ${k} changed`);
      }
      if (typeof result.metadata.annotations[STATUS_ANNOTATION] !== 'string') throw new Error('no status');
      for (const key of Object.keys(original.metadata)) {
        if (key !== 'annotations' && JSON.stringify(original.metadata[key]) !== JSON.stringify(result.metadata[key])) throw new Error(`metadata.${key}`);
      }
      new Pod(structuredClone(result) as ConstructorParameters<typeof Pod>[0]).validate();
    }),
    { numRuns: NUM_RUNS, seed: Number(process.env.FC_SEED ?? 20251125) },
  );
  t.pass('property held');
});

t.test('reinvocation after another webhook prepends or appends: ours back first, then stable', async (t) => {
  fc.assert(
    fc.property(podArb, fc.boolean(), (pod, prepend) => {
      const once = applied(pod, injectedOps(pod)) as Loose;
      const other = { name: 'zz-other-init', image: 'example/other:1' };
      if (prepend) once.spec.initContainers.unshift(other);
      else once.spec.containers.push({ ...other, name: 'zz-other-sidecar' });
      const ops = injectedOps(once);
      if (ops.some((o) => o.op === 'replace' && /^\/spec\/(init)?[cC]ontainers\/\d+$/.test(o.path))) throw new Error('whole-container replace');
      if (ops.some((o) => o.op === 'remove')) throw new Error('remove op');
      const twice = applied(once, ops) as Loose;
      if (twice.spec.initContainers[0].name !== INIT_CONTAINER) throw new Error('ours not first after reinvocation');
      if (injectedOps(twice).length !== 0) throw new Error('third pass not empty');
    }),
    { numRuns: NUM_RUNS, seed: Number(process.env.FC_SEED ?? 20251125) },
  );
  t.pass('property held');
});

t.test('hostile JSON: a plan or InjectionRefused, never a crash; injected ops still apply', async (t) => {
  let injected = 0;
  fc.assert(
    fc.property(
      fc.jsonValue({ maxDepth: 4 }),
      fc.constantFrom('spec', 'spec.containers', 'spec.initContainers', 'spec.volumes', 'metadata', 'metadata.annotations', 'container.env', 'container.volumeMounts', 'container'),
      (junk, where) => {
        const pod: Loose = { kind: 'Pod', metadata: { name: 'x', annotations: { a: 'b' } }, spec: { containers: [{ name: 'app', image: 'i' }] } };
        const [head, tail] = where.split('.') as [string, string | undefined];
        if (head === 'container') {
          if (tail) pod.spec.containers[0][tail] = junk;
          else pod.spec.containers[0] = junk;
        } else if (tail) pod[head][tail] = junk;
        else pod[head] = junk;
        let plan;
        try {
          plan = planInjection(pod, 'shop', settings);
        } catch (err) {
          if (err instanceof InjectionRefused) return;
          throw err;
        }
        if (plan.action === 'inject') {
          injected++;
          const result = applied(pod, plan.ops);
          const again = planInjection(result, 'shop', settings);
          if (again.action !== 'inject' || again.ops.length !== 0) throw new Error('second pass not empty');
        }
      },
    ),
    { numRuns: NUM_RUNS * 2, seed: Number(process.env.FC_SEED ?? 20251125) },
  );
  t.ok(injected > 0, `some hostile shapes were still injectable (${injected})`);
});
