import t from 'tap';
import { accountsFromEnv, authenticate } from './accounts.js';

t.test('accounts from env: pairs, none, half a pair', async (t) => {
  t.same(accountsFromEnv({}), []);
  t.same(accountsFromEnv({ DEMOMAIL_SMTP_USERNAME: 'smtp@d.test', DEMOMAIL_SMTP_PASSWORD: 'p1', DEMOMAIL_IMAP2_USERNAME: 'imap2@d.test', DEMOMAIL_IMAP2_PASSWORD: 'p3' }), [
    { username: 'smtp@d.test', password: 'p1' },
    { username: 'imap2@d.test', password: 'p3' },
  ]);
  t.throws(() => accountsFromEnv({ DEMOMAIL_IMAP_USERNAME: 'imap@d.test' }), /DEMOMAIL_IMAP_PASSWORD is empty/);
});

t.test('authenticate: right pair only, username case-insensitive', async (t) => {
  const accounts = [
    { username: 'smtp@d.test', password: 'secret-one' },
    { username: 'imap@d.test', password: 'secret-two' },
  ];
  t.equal(authenticate(accounts, 'SMTP@d.test', 'secret-one')?.username, 'smtp@d.test');
  t.equal(authenticate(accounts, 'smtp@d.test', 'secret-two'), undefined, "another account's password");
  t.equal(authenticate(accounts, 'smtp@d.test', 'secret-on'), undefined, 'a prefix');
  t.equal(authenticate(accounts, 'nobody@d.test', 'secret-one'), undefined);
  t.equal(authenticate([], 'smtp@d.test', ''), undefined);
});
