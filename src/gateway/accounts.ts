// SMTP AUTH accounts: the three credential Secrets (demomail-smtp, -imap, -imap2), reached as env from
// secretKeyRef (the same variable names an injected pod gets). Pure apart from reading `env`.
import { createHash, timingSafeEqual } from 'node:crypto';

export interface Account {
  username: string;
  password: string;
}

/** Env names the gateway container declares (secretKeyRef, `optional: false`). */
export const ACCOUNT_ENV = Object.freeze([
  { username: 'DEMOMAIL_SMTP_USERNAME', password: 'DEMOMAIL_SMTP_PASSWORD' },
  { username: 'DEMOMAIL_IMAP_USERNAME', password: 'DEMOMAIL_IMAP_PASSWORD' },
  { username: 'DEMOMAIL_IMAP2_USERNAME', password: 'DEMOMAIL_IMAP2_PASSWORD' },
]);

/** The accounts whose variables are set; a half-set pair is an error naming the variable. */
export function accountsFromEnv(env: NodeJS.ProcessEnv): Account[] {
  const accounts: Account[] = [];
  for (const names of ACCOUNT_ENV) {
    const username = env[names.username] ?? '';
    const password = env[names.password] ?? '';
    if (username === '' && password === '') continue;
    if (username === '' || password === '') {
      const missing = username === '' ? names.username : names.password;
      throw new Error(`${missing} is empty while its pair is set: both come from the same credential Secret (keys username and password)`);
    }
    accounts.push({ username, password });
  }
  return accounts;
}

// Both sides hashed first: timingSafeEqual needs equal lengths, and comparing digests leaks neither
// the length nor a prefix of the stored password.
function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The account matching username (case-insensitive: it is a mail address) and password (constant time).
 * Every account is compared, matching or not, so the time does not tell which usernames exist.
 */
export function authenticate(accounts: readonly Account[], username: string, password: string): Account | undefined {
  const given = digest(password);
  let found: Account | undefined;
  for (const account of accounts) {
    const passwordOk = timingSafeEqual(digest(account.password), given);
    if (passwordOk && account.username.toLowerCase() === username.toLowerCase()) found = account;
  }
  return found;
}
