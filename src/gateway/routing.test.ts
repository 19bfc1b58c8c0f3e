import t from 'tap';
import fc from 'fast-check';
import { planRouting, routeGenerated, routeRecipient, SIMULATED_RULE, type RecipientRoute, type RoutingSettings } from './routing.js';

// BOUNCE_MAILBOX differs from the IMAP account here so that rule 2 and rule 1 are told apart.
const base: RoutingSettings = { mailDomain: 'demomail.test', simulateDomain: 'bounce.demomail.test', bounceMailbox: 'bounces@demomail.test', verpLocalpart: '' };
const HASH = '0123456789abcdef';

const deliver = (recipient: string, mailbox: string, rule: 'direct' | 'plus-address' | 'civimail-return-path'): RecipientRoute => ({ delivery: { recipient, mailbox, rule } });
const simulate = (recipient: string, kind: 'dsn-hard' | 'dsn-soft' | 'auto-reply'): RecipientRoute => ({ simulated: { kind, recipient } });

t.test('one recipient: every rule, in order', async (t) => {
  const table: [string, Partial<RoutingSettings>, string, RecipientRoute][] = [
    // rule 3
    ['hard bounce', {}, 'hard-1@bounce.demomail.test', simulate('hard-1@bounce.demomail.test', 'dsn-hard')],
    ['soft bounce', {}, 'soft@bounce.demomail.test', simulate('soft@bounce.demomail.test', 'dsn-soft')],
    ['auto-reply', {}, 'ooo-anna@bounce.demomail.test', simulate('ooo-anna@bounce.demomail.test', 'auto-reply')],
    ['simulate domain and prefix in any case, spelling kept', {}, 'HARD-2@Bounce.DemoMail.Test', simulate('HARD-2@Bounce.DemoMail.Test', 'dsn-hard')],
    ['simulated before plus-addressing', {}, 'hard+x@bounce.demomail.test', simulate('hard+x@bounce.demomail.test', 'dsn-hard')],
    ['other local parts at the simulate domain are ordinary', {}, 'hadr-1@bounce.demomail.test', deliver('hadr-1@bounce.demomail.test', 'hadr-1@bounce.demomail.test', 'direct')],
    ['plus-addressing at the simulate domain', {}, 'anna+x@bounce.demomail.test', deliver('anna+x@bounce.demomail.test', 'anna@bounce.demomail.test', 'plus-address')],
    ['prefix elsewhere is not simulated', {}, 'hard-1@demomail.test', deliver('hard-1@demomail.test', 'hard-1@demomail.test', 'direct')],
    ['custom simulate domain', { simulateDomain: 'sim.example' }, 'ooo@sim.example', simulate('ooo@sim.example', 'auto-reply')],
    ['default domain no longer simulated', { simulateDomain: 'sim.example' }, 'hard@bounce.demomail.test', deliver('hard@bounce.demomail.test', 'hard@bounce.demomail.test', 'direct')],
    // rule 1
    ['plus-address', {}, 'bob+news@demomail.test', deliver('bob+news@demomail.test', 'bob@demomail.test', 'plus-address')],
    ['plus-address, several +', {}, 'Bob+a+b@Example.org', deliver('Bob+a+b@Example.org', 'bob@example.org', 'plus-address')],
    ['CiviMail return path with imap+, VERP_LOCALPART empty', {}, `imap+b.7.42.${HASH}@demomail.test`, deliver(`imap+b.7.42.${HASH}@demomail.test`, 'imap@demomail.test', 'civimail-return-path')],
    ['CiviMail return path with imap+, VERP_LOCALPART imap+', { verpLocalpart: 'imap+' }, `imap+b.7.42.${HASH}@demomail.test`, deliver(`imap+b.7.42.${HASH}@demomail.test`, 'imap@demomail.test', 'civimail-return-path')],
    ['+ wins over BOUNCE_MAILBOX, any domain', {}, `bounce+r.1.2.${HASH}@civi.example`, deliver(`bounce+r.1.2.${HASH}@civi.example`, 'bounce@civi.example', 'civimail-return-path')],
    ['uppercase VERP hash', {}, `IMAP+B.7.42.${HASH.toUpperCase()}@DemoMail.test`, deliver(`IMAP+B.7.42.${HASH.toUpperCase()}@DemoMail.test`, 'imap@demomail.test', 'civimail-return-path')],
    ['VERP-like detail with a short hash is plain plus', {}, 'imap+b.7.42.0123@demomail.test', deliver('imap+b.7.42.0123@demomail.test', 'imap@demomail.test', 'plus-address')],
    ['VERP-like detail with an unknown action is plain plus', {}, `imap+x.7.42.${HASH}@demomail.test`, deliver(`imap+x.7.42.${HASH}@demomail.test`, 'imap@demomail.test', 'plus-address')],
    // rule 2
    ['return path without +, VERP_LOCALPART empty', {}, `b.7.42.${HASH}@demomail.test`, deliver(`b.7.42.${HASH}@demomail.test`, 'bounces@demomail.test', 'civimail-return-path')],
    ...[...'bcemoru'].map((a): [string, Partial<RoutingSettings>, string, RecipientRoute] => [`action ${a}, domain in any case`, {}, `${a}.1.2.${HASH}@DEMOMAIL.TEST`, deliver(`${a}.1.2.${HASH}@DEMOMAIL.TEST`, 'bounces@demomail.test', 'civimail-return-path')]),
    ['return path with VERP_LOCALPART', { verpLocalpart: 'civi.' }, `civi.e.7.42.${HASH}@demomail.test`, deliver(`civi.e.7.42.${HASH}@demomail.test`, 'bounces@demomail.test', 'civimail-return-path')],
    ['VERP_LOCALPART is literal, not a pattern', { verpLocalpart: 'civi.' }, `civiXe.7.42.${HASH}@demomail.test`, deliver(`civiXe.7.42.${HASH}@demomail.test`, `civixe.7.42.${HASH}@demomail.test`, 'direct')],
    ['VERP_LOCALPART set, bare tail is not a return path', { verpLocalpart: 'civi.' }, `b.7.42.${HASH}@demomail.test`, deliver(`b.7.42.${HASH}@demomail.test`, `b.7.42.${HASH}@demomail.test`, 'direct')],
    ['return path at another domain stays', {}, `b.7.42.${HASH}@other.example`, deliver(`b.7.42.${HASH}@other.example`, `b.7.42.${HASH}@other.example`, 'direct')],
    ['BOUNCE_MAILBOX lower-cased', { bounceMailbox: 'Bounces@DemoMail.Test' }, `b.7.42.${HASH}@demomail.test`, deliver(`b.7.42.${HASH}@demomail.test`, 'bounces@demomail.test', 'civimail-return-path')],
    // rule 4 and odd input
    ['direct, lower-cased mailbox, spelling kept', {}, 'Anna.Muster@Example.ORG', deliver('Anna.Muster@Example.ORG', 'anna.muster@example.org', 'direct')],
    ['no @', {}, 'postmaster', deliver('postmaster', 'postmaster', 'direct')],
    ['empty local part', {}, '@demomail.test', deliver('@demomail.test', '@demomail.test', 'direct')],
    ['empty domain', {}, 'bob+x@', deliver('bob+x@', 'bob+x@', 'direct')],
    ['leading +', {}, '+x@demomail.test', deliver('+x@demomail.test', '+x@demomail.test', 'direct')],
    ['quoted local part: + is not a separator', {}, '"bob+x@y"@demomail.test', deliver('"bob+x@y"@demomail.test', '"bob+x@y"@demomail.test', 'direct')],
    ['IDN domain', {}, 'Jörg+x@Bücher.Example', deliver('Jörg+x@Bücher.Example', 'jörg@bücher.example', 'plus-address')],
  ];
  for (const [name, settings, recipient, want] of table) t.same(routeRecipient(recipient, { ...base, ...settings }), want, name);
});

t.test('whole envelopes', async (t) => {
  const from = `imap+b.7.42.${HASH}@demomail.test`;
  t.same(planRouting({ mailFrom: from, rcptTo: ['a@demomail.test', 'b+x@demomail.test', `c.7.42.${HASH}@demomail.test`] }, base), {
    deliveries: [
      { recipient: 'a@demomail.test', mailbox: 'a@demomail.test', rule: 'direct' },
      { recipient: 'b+x@demomail.test', mailbox: 'b@demomail.test', rule: 'plus-address' },
      { recipient: `c.7.42.${HASH}@demomail.test`, mailbox: 'bounces@demomail.test', rule: 'civimail-return-path' },
    ],
    simulated: [],
  }, 'three recipients, three copies');

  t.same(planRouting({ mailFrom: from, rcptTo: ['hard-1@bounce.demomail.test', 'anna@demomail.test', 'soft-1@bounce.demomail.test', 'ooo-1@bounce.demomail.test'] }, base), {
    deliveries: [{ recipient: 'anna@demomail.test', mailbox: 'anna@demomail.test', rule: 'direct' }],
    simulated: [
      { kind: 'dsn-hard', recipient: 'hard-1@bounce.demomail.test' },
      { kind: 'dsn-soft', recipient: 'soft-1@bounce.demomail.test' },
      { kind: 'auto-reply', recipient: 'ooo-1@bounce.demomail.test' },
    ],
  }, 'simulated and real recipients mixed');

  t.same(planRouting({ mailFrom: 'x@y', rcptTo: ['Bob@demomail.test', 'bob@demomail.test', 'hard@bounce.demomail.test', 'HARD@bounce.demomail.test'] }, base), {
    deliveries: [{ recipient: 'Bob@demomail.test', mailbox: 'bob@demomail.test', rule: 'direct' }],
    simulated: [{ kind: 'dsn-hard', recipient: 'hard@bounce.demomail.test' }],
  }, 'a recipient given twice: one copy, one outcome, first spelling');

  t.same(planRouting({ mailFrom: 'x@y', rcptTo: ['imap+a@demomail.test', 'imap+b@demomail.test', 'imap@demomail.test'] }, base).deliveries.map((d) => [d.recipient, d.mailbox]), [
    ['imap+a@demomail.test', 'imap@demomail.test'],
    ['imap+b@demomail.test', 'imap@demomail.test'],
    ['imap@demomail.test', 'imap@demomail.test'],
  ], 'different recipients, one mailbox: one copy per recipient');

  t.same(planRouting({ mailFrom: '', rcptTo: ['hard-1@bounce.demomail.test', 'ooo@bounce.demomail.test', 'a@demomail.test'] }, base), {
    deliveries: [{ recipient: 'a@demomail.test', mailbox: 'a@demomail.test', rule: 'direct' }],
    simulated: [],
  }, 'the null sender triggers no outcome');

  t.same(planRouting({ mailFrom: 'x@y', rcptTo: [] }, base), { deliveries: [], simulated: [] });
});

t.test('generated messages: routed by rules 1–2, never generate again', async (t) => {
  const imap = { ...base, bounceMailbox: 'imap@demomail.test' };
  t.same(routeGenerated({ mailFrom: '', rcptTo: [`imap+b.7.42.${HASH}@demomail.test`] }, imap).deliveries, [
    { recipient: `imap+b.7.42.${HASH}@demomail.test`, mailbox: 'imap@demomail.test', rule: 'civimail-return-path' },
  ], 'DSN to the imap+ return path');
  t.same(routeGenerated({ mailFrom: '', rcptTo: [`b.7.42.${HASH}@demomail.test`] }, imap).deliveries, [
    { recipient: `b.7.42.${HASH}@demomail.test`, mailbox: 'imap@demomail.test', rule: 'civimail-return-path' },
  ], 'DSN to a bare return path, VERP_LOCALPART empty → BOUNCE_MAILBOX');
  t.same(routeGenerated({ mailFrom: '', rcptTo: ['hard-x@bounce.demomail.test'] }, imap), { deliveries: [], simulated: [] }, 'DSN to a simulated address is dropped');
  t.same(routeGenerated({ mailFrom: 'someone@else', rcptTo: ['ooo@bounce.demomail.test', 'a@demomail.test'] }, imap), {
    deliveries: [{ recipient: 'a@demomail.test', mailbox: 'a@demomail.test', rule: 'direct' }],
    simulated: [],
  }, 'no outcome even with a non-null sender');
  t.same(SIMULATED_RULE, { 'dsn-hard': 'simulated-hard-bounce', 'dsn-soft': 'simulated-soft-bounce', 'auto-reply': 'simulated-auto-reply' });
});

t.test('property: never throws, each distinct real recipient gets exactly one copy', async (t) => {
  const local = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom('hard', 'SOFT-1', 'ooo', 'imap+', 'imap+b.7.42.' + HASH, 'b.1.2.' + HASH, '"a@b"', '"x+y"', '+', 'Jörg', 'a+b+c', ''),
    fc.tuple(fc.constantFrom('', 'imap+', 'civi.'), fc.constantFrom(...'bcemorux'), fc.nat(), fc.nat(), fc.stringMatching(/^[0-9a-fA-F]{14,17}$/)).map(([p, a, j, q, h]) => `${p}${a}.${j}.${q}.${h}`),
  );
  const domain = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('demomail.test', 'Bounce.DemoMail.test', 'sim.example', 'bücher.example', ''));
  const address = fc.oneof(fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`), fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 20 }));
  const settings = fc.record({
    mailDomain: fc.constantFrom('demomail.test', 'DemoMail.Test', 'sim.example'),
    simulateDomain: fc.constantFrom('bounce.demomail.test', 'sim.example', 'demomail.test'),
    bounceMailbox: fc.constantFrom('imap@demomail.test', 'Bounces@demomail.test'),
    verpLocalpart: fc.constantFrom('', 'imap+', 'civi.', 'a.b*c(', '+'),
  });
  fc.assert(
    fc.property(fc.array(address, { maxLength: 12 }), fc.constantFrom('', 'x@y', '<>'), settings, (rcptTo, mailFrom, s) => {
      const plan = planRouting({ mailFrom, rcptTo }, s);
      const distinct = new Set(rcptTo.map((r) => r.toLowerCase()));
      for (const key of distinct) {
        const copies = plan.deliveries.filter((d) => d.recipient.toLowerCase() === key);
        const outcomes = plan.simulated.filter((o) => o.recipient.toLowerCase() === key);
        const simulated = 'simulated' in routeRecipient(key, s);
        if (simulated) {
          if (copies.length !== 0 || outcomes.length !== (mailFrom === '' ? 0 : 1)) return false;
        } else if (copies.length !== 1 || outcomes.length !== 0) return false;
      }
      if (plan.deliveries.length + plan.simulated.length > distinct.size) return false;
      if (!plan.deliveries.every((d) => d.mailbox === d.mailbox.toLowerCase() && rcptTo.includes(d.recipient))) return false;
      return routeGenerated({ mailFrom, rcptTo }, s).simulated.length === 0;
    }),
    { numRuns: 500 },
  );
  t.pass('500 envelopes');
});
