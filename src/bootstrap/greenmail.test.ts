import t from 'tap';
import { settingsFrom } from '../config.js';
import { containerEnvironment, expandKubeletReferences, greenmailOpts, javaOpts, parseGreenmailUsers, shellWords } from './greenmail.js';

t.test('$(VAR) expansion follows the kubelet (third_party/forked/golang/expansion)', async (t) => {
  const vars: Record<string, string> = { A: 'x', B: 'y', EMPTY: '' };
  const lookup = (name: string) => vars[name];
  const table: [string, string][] = [
    ['', ''],
    ['plain', 'plain'],
    ['$(A)', 'x'],
    ['$(A)$(B)', 'xy'],
    ['pre-$(A)-post', 'pre-x-post'],
    ['$(UNKNOWN)', '$(UNKNOWN)'],
    ['$(EMPTY)z', 'z'],
    ['$$(A)', '$(A)'],
    ['$$$(A)', '$x'],
    ['$$', '$'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$A', '$A'],
    ['$(A', '$(A'],
    ['$()', '$()'],
    ['$(A)$', 'x$'],
    ['-Dk=$(A):$(B)@d', '-Dk=x:y@d'],
  ];
  for (const [input, want] of table) t.equal(expandKubeletReferences(input, lookup), want, JSON.stringify(input));
});

t.test('containerEnvironment: declaration order, secretKeyRef, optional, missing', async (t) => {
  const secrets = { s: { password: Buffer.from('pw1').toString('base64') } };
  const env = containerEnvironment(
    [
      { name: 'EARLY', value: 'uses $(PASS) before it exists' },
      { name: 'PASS', valueFrom: { secretKeyRef: { name: 's', key: 'password' } } },
      { name: 'OPTS', value: '-Dp=$(PASS) -Dq=$(LATER)' },
      { name: 'LATER', value: 'late' },
      { name: 'OPT', valueFrom: { secretKeyRef: { name: 'nope', key: 'k', optional: true } } },
    ],
    { secrets },
  );
  t.same(env, { EARLY: 'uses $(PASS) before it exists', PASS: 'pw1', OPTS: '-Dp=pw1 -Dq=$(LATER)', LATER: 'late' });
  t.throws(
    () => containerEnvironment([{ name: 'X', valueFrom: { secretKeyRef: { name: 'gone', key: 'password' } } }], { secrets }),
    /env X needs key "password" of Secret gone, which is missing/,
  );
});

t.test('GreenMail options are shell-safe and reference, never contain, the passwords', async (t) => {
  const s = settingsFrom({ MAIL_DOMAIN: 'example.test', SMTP_USER: 'civi.smtp', MAILSERVER_HEAP: '300m' });
  const opts = greenmailOpts(s);
  t.equal(
    opts,
    '-Dgreenmail.smtp.hostname=127.0.0.1 -Dgreenmail.smtp.port=3025 -Dgreenmail.imap.hostname=0.0.0.0 -Dgreenmail.imap.port=3143 ' +
      '-Dgreenmail.imaps.hostname=0.0.0.0 -Dgreenmail.imaps.port=3993 -Dgreenmail.api.hostname=127.0.0.1 -Dgreenmail.api.port=8080 -Dgreenmail.startup.timeout=30000 ' +
      '-Dgreenmail.users=civi.smtp:$(SMTP_PASSWORD)@example.test,imap:$(IMAP_PASSWORD)@example.test,imap2:$(IMAP2_PASSWORD)@example.test ' +
      '-Dgreenmail.users.login=email -Dgreenmail.tls.keystore.file=/tls/keystore.p12 -Dgreenmail.tls.keystore.password=$(KEYSTORE_PASSWORD)',
  );
  t.same(shellWords(javaOpts(s)), ['-Djava.net.preferIPv4Stack=true', '-Xmx300m', '-XX:+ExitOnOutOfMemoryError']);
});

t.test('parseGreenmailUsers mirrors GreenMail 2.1.7', async (t) => {
  t.same(parseGreenmailUsers('a:p@d.test,b:q'), [{ login: 'a', password: 'p', domain: 'd.test' }, { login: 'b', password: 'q' }]);
  t.throws(() => parseGreenmailUsers('a@d.test:p@d.test'), /is not login:pwd\[@domain\]/, 'a full address as login is refused');
  t.throws(() => parseGreenmailUsers('secretless'), /"secretless"/);
  let message = '';
  try {
    parseGreenmailUsers('a:pa:ss@d');
  } catch (err) {
    message = (err as Error).message;
  }
  t.match(message, /"a:…"/);
  t.notOk(message.includes('pa'), 'the error does not echo the password');
});
