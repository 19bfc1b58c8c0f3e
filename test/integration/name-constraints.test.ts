// DESIGN §10: the mail CA is trusted as a root by every injected container, so it must not be able to
// vouch for any other host. A leaf for api.stripe.com signed with the mail CA's own key is what someone
// who read Secret demomail-ca could mint; OpenSSL, Node's tls, curl and PHP must all refuse it, while
// the mail server's real certificate (the names the bootstrap puts in it) verifies.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createSecureContext } from 'node:tls';
import t from 'tap';
import { mailserverSans, settingsFrom } from '../../src/config.js';
import { createCertificateAuthority, createServerCertificate, nameConstraints } from '../../src/pki/certificates.js';

const CI = process.env['CI'] === 'true';
const missing = ['openssl', 'curl', 'php'].filter((tool) => spawnSync(tool, [tool === 'openssl' ? 'version' : '--version']).status !== 0);

const settings = settingsFrom({ EXTRA_SANS: 'mail.demo.example.org, 192.0.2.25' });
const wanted = mailserverSans(settings);
const ca = createCertificateAuthority({ commonName: 'demomail mail CA', permittedNames: wanted });
const leaves: Record<string, ReturnType<typeof createServerCertificate>> = {
  'smtpdemo.demomail.svc.cluster.local': createServerCertificate({ ca, commonName: 'smtpdemo.demomail.svc.cluster.local', sans: wanted }),
  'api.stripe.com': createServerCertificate({ ca, commonName: 'api.stripe.com', sans: ['api.stripe.com'] }),
  // One allowed name plus a foreign one: the whole certificate is refused, not just the foreign name.
  'mixed.example.com': createServerCertificate({ ca, commonName: 'imapdemo', sans: ['imapdemo', 'mixed.example.com'] }),
  // A sibling Service in the same namespace: not a subdomain of any permitted base.
  'kubernetes.default.svc.cluster.local': createServerCertificate({ ca, commonName: 'kubernetes', sans: ['kubernetes.default.svc.cluster.local'] }),
};
const forgedIp = createServerCertificate({ ca, commonName: '10.96.0.1', sans: ['10.96.0.1'] });

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });
}

t.test('the mail CA carries critical Name Constraints with exactly the mail server names', async (t) => {
  const nc = nameConstraints(ca.certPem);
  t.same(nc?.dns, wanted.filter((n) => !/^[\d.]+$/.test(n)));
  t.same(nc?.ips, ['127.0.0.1/32', '192.0.2.25/32']);
  if (missing.includes('openssl')) return;
  const text = spawnSync('openssl', ['x509', '-noout', '-text'], { input: ca.certPem }).stdout.toString();
  t.match(text, /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:smtpdemo\s/);
  t.match(text, /IP:127\.0\.0\.1\/255\.255\.255\.255/);
});

t.test('OpenSSL, Node tls, curl and PHP accept the mail server and refuse every other name', { skip: missing.length > 0 && !CI ? `${missing.join(', ')} not installed (SKIPPED)` : false }, async (t) => {
  t.same(missing, [], 'openssl, curl and php are installed');
  const dir = mkdtempSync(join(tmpdir(), 'demomail-nc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, ca.certPem);

  const figures: string[] = [];
  // 1. openssl verify -verify_hostname, as the issue reproduced it.
  for (const [host, leaf] of Object.entries(leaves)) {
    const file = join(dir, `${host}.crt`);
    writeFileSync(file, leaf.certPem);
    const r = await run('openssl', ['verify', '-CAfile', caFile, '-verify_hostname', host, '-purpose', 'sslserver', file]);
    const good = host.startsWith('smtpdemo');
    t.equal(r.code === 0, good, `openssl verify ${host}: ${good ? 'OK' : 'refused'}`);
    if (!good) t.match(r.out, /name constraints|permitted subtree/i, `${host}: refused for the name constraints`);
    figures.push(`openssl ${host}: ${r.code === 0 ? 'OK' : 'refused'}`);
  }
  const ipFile = join(dir, 'ip.crt');
  writeFileSync(ipFile, forgedIp.certPem);
  const ipRun = await run('openssl', ['verify', '-CAfile', caFile, '-verify_ip', '10.96.0.1', '-purpose', 'sslserver', ipFile]);
  t.not(ipRun.code, 0, 'a leaf for the IP 10.96.0.1 is refused');
  t.match(ipRun.out, /name constraints|permitted subtree/i);

  // 2. A real HTTPS server presenting the leaf for whatever name the client asks for (SNI).
  const contexts = Object.fromEntries(Object.entries(leaves).map(([host, leaf]) => [host, createSecureContext({ cert: leaf.certPem, key: leaf.keyPem })]));
  const server = createServer(
    { cert: leaves['api.stripe.com']?.certPem, key: leaves['api.stripe.com']?.keyPem, SNICallback: (name, cb) => cb(null, contexts[name]) },
    (_req, res) => res.end('ok'),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;

  for (const host of Object.keys(leaves)) {
    const good = host.startsWith('smtpdemo');
    const node = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, servername: host, ca: ca.certPem }, () => {
        socket.end();
        resolve('OK');
      });
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(`${err.code ?? ''} ${err.message}`));
    });
    t.equal(node === 'OK', good, `node tls ${host}: ${node}`);
    if (!good) t.match(node, /permitted subtree violation/i, `${host}: Node refuses it for the name constraints`);

    const curl = await run('curl', ['-sS', '--max-time', '10', '--cacert', caFile, '--resolve', `${host}:${port}:127.0.0.1`, `https://${host}:${port}/`]);
    t.equal(curl.code === 0, good, `curl ${host}: ${curl.code === 0 ? 'OK' : curl.out.trim()}`);

    const php = await run('php', [
      '-r',
      `$c = stream_context_create(["ssl" => ["cafile" => "${caFile}", "peer_name" => "${host}", "verify_peer" => true]]);` +
        `$s = @stream_socket_client("ssl://127.0.0.1:${port}", $e, $m, 10, STREAM_CLIENT_CONNECT, $c);` +
        `if ($s) { echo "OK"; exit(0); } $err = error_get_last(); echo $err ? $err["message"] : $m; exit(1);`,
    ]);
    t.equal(php.code === 0, good, `php ${host}: ${php.code === 0 ? 'OK' : php.out.trim().slice(0, 160)}`);
    figures.push(`${host}: node ${node === 'OK' ? 'OK' : 'refused'}, curl ${curl.code === 0 ? 'OK' : `exit ${curl.code}`}, php ${php.code === 0 ? 'OK' : 'refused'}`);
  }
  t.comment(`name-constrained mail CA:\n  ${figures.join('\n  ')}`);
});
