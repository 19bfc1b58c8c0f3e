import t from 'tap';
import { settingsFrom, mailserverSans, SettingsError, settingsFromEnv, injectionSettings } from './config.js';

t.test('defaults', async (t) => {
  const s = settingsFrom({});
  t.equal(s.namespace, 'demomail');
  t.equal(s.deployMailserver, true);
  t.equal(s.names.smtpService, 'smtpdemo');
  t.same(mailserverSans(s).slice(0, 4), ['smtpdemo', 'smtpdemo.demomail', 'smtpdemo.demomail.svc', 'smtpdemo.demomail.svc.cluster.local']);
  t.ok(mailserverSans(s).includes('127.0.0.1'));
  t.ok(mailserverSans(s).includes('imapdemo.demomail.svc.cluster.local'));
});

t.test('DEPLOY_MAILSERVER: only "1" deploys', async (t) => {
  for (const [value, want] of [['1', true], ['0', false], ['true', false], ['yes', false]] as const) {
    t.equal(settingsFrom({ DEPLOY_MAILSERVER: value }).deployMailserver, want, value);
  }
});

t.test('bad values are refused with the key and a fix', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ NAMESPACE: 'Bad_NS' }, /NAMESPACE="Bad_NS".*valid Kubernetes name/],
    [{ MAIL_DOMAIN: 'not a domain' }, /MAIL_DOMAIN/],
    [{ EXTRA_SANS: 'ok.example, bad_name!' }, /EXTRA_SANS contains "bad_name!"/],
    [{ SMTP_USER: 'a@b' }, /SMTP_USER.*without '@'/],
    [{ MAILSERVER_HEAP: 'lots' }, /MAILSERVER_HEAP/],
    [{ IMAGE_PULL_POLICY: 'Sometimes' }, /IMAGE_PULL_POLICY/],
    [{ MAILSERVER_MEMORY_LIMIT: '1GB' }, /MAILSERVER_MEMORY_LIMIT/],
  ];
  for (const [raw, message] of cases) {
    t.throws(() => settingsFrom(raw), { name: 'SettingsError', message }, JSON.stringify(raw));
  }
  t.ok(new SettingsError('x') instanceof Error);
});

t.test('EXTRA_SANS accepts names and IPs, comma or space separated', async (t) => {
  const s = settingsFrom({ EXTRA_SANS: 'Mail.Example.test, 10.0.0.5 ::1' });
  t.same(s.extraSans, ['mail.example.test', '10.0.0.5', '::1']);
  t.same(settingsFrom({ EXTRA_SANS: '[::1] *.demo.test' }).extraSans, ['::1', '*.demo.test'], 'bracketed IPv6 and wildcards, as the certificate code reads them');
  for (const bad of ['1:2', 'a:b:c', 'fe80::1%eth0']) {
    t.throws(() => settingsFrom({ EXTRA_SANS: bad }), { name: 'SettingsError', message: new RegExp(`EXTRA_SANS contains "${bad}"`) }, bad);
  }
  t.same(mailserverSans(s).slice(-3), ['mail.example.test', '10.0.0.5', '::1']);
});

t.test('env uses the DEMOMAIL_ prefix only', async (t) => {
  const s = settingsFromEnv({ DEMOMAIL_NAMESPACE: 'mail', IMAGE: 'ignored', DEMOMAIL_MAIL_DOMAIN: 'x.test' }, { SMTP_USER: 'civi' });
  t.equal(s.namespace, 'mail');
  t.equal(s.image, settingsFrom({}).image);
  t.equal(s.smtpUser, 'civi');
  const inj = injectionSettings(s, 'PEM');
  t.equal(inj.smtpHost, 'smtpdemo.mail.svc.cluster.local');
  t.equal(inj.imapPort, 993);
  t.same(inj.excludedNamespaces, ['mail', 'kube-system']);
});

t.test('gateway settings: defaults follow MAIL_DOMAIN and IMAP_USER; bad values are refused with the key', async (t) => {
  const d = settingsFrom({ MAIL_DOMAIN: 'Civi.Example', IMAP_USER: 'bounces' }).gateway;
  t.same(d, {
    simulateDomain: 'bounce.civi.example',
    bounceMailbox: 'bounces@civi.example',
    verpLocalpart: '',
    storeMaxMessages: 5000,
    storeMaxBytes: 256 * 1024 ** 2,
    messageSizeLimit: 25 * 1024 ** 2,
    maxRecipients: 1000,
    memoryLimit: '768Mi',
  });
  t.equal(settingsFrom({ VERP_LOCALPART: 'imap+', STORE_MAX_BYTES: '1048576' }).gateway.storeMaxBytes, 1048576);
  t.equal(settingsFrom({ VERP_LOCALPART: 'imap+' }).gateway.verpLocalpart, 'imap+');
  const bad: [string, string, RegExp][] = [
    ['SIMULATE_DOMAIN', 'not a domain', /SIMULATE_DOMAIN/],
    ['BOUNCE_MAILBOX', 'two@x@y', /BOUNCE_MAILBOX/],
    ['VERP_LOCALPART', 'a b', /VERP_LOCALPART/],
    ['STORE_MAX_MESSAGES', '0', /STORE_MAX_MESSAGES/],
    ['STORE_MAX_BYTES', '12 MB', /STORE_MAX_BYTES/],
    ['MESSAGE_SIZE_LIMIT', '-1', /MESSAGE_SIZE_LIMIT/],
    ['MAX_RECIPIENTS', '1.5', /MAX_RECIPIENTS/],
    ['GATEWAY_MEMORY_LIMIT', '1 GB', /GATEWAY_MEMORY_LIMIT/],
  ];
  for (const [key, value, message] of bad) t.throws(() => settingsFrom({ [key]: value }), { name: 'SettingsError', message }, `${key}=${value}`);
});
