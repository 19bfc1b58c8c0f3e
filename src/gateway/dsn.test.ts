import t, { type Test } from 'tap';
import fc from 'fast-check';
import { simpleParser, type AddressObject } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import { generateMessage, RETURNED_HEADERS_LIMIT, type GenerateInput, type GeneratedMessage } from './dsn.js';
import { planRouting, routeGenerated, type RoutingSettings, type SimulatedOutcome } from './routing.js';

const NOW = new Date('2026-12-01T03:00:00Z');
const HASH = '0123456789abcdef';
const RETURN_PATH = `imap+b.7.42.${HASH}@demomail.test`;
const MTA = 'smtpdemo.demomail.svc.cluster.local';
const settings: RoutingSettings = { mailDomain: 'demomail.test', simulateDomain: 'bounce.demomail.test', bounceMailbox: 'imap@demomail.test', verpLocalpart: '' };

// What CiviMail sends: VERP Reply-To, List-Unsubscribe, an encoded subject; no Auto-Submitted.
const MAILING = Buffer.from(
  [
    'From: "Demo Org" <info@demomail.test>',
    'Reply-To: imap+r.7.42.0123456789abcdef@demomail.test',
    'To: hard-1@bounce.demomail.test',
    'Subject: =?UTF-8?Q?Spendenaufruf_f=C3=BCr_den_Winter?=',
    'Message-ID: <civimail.7.42@demomail.test>',
    'List-Unsubscribe: <mailto:imap+u.7.42.0123456789abcdef@demomail.test>',
    'X-CiviMail-Bounce: imap+b.7.42.0123456789abcdef@demomail.test',
    'Precedence: bulk',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Dear friend, winter is coming.',
    '',
  ].join('\r\n'),
);

function input(kind: SimulatedOutcome['kind'], original: Buffer = MAILING, mailFrom = RETURN_PATH, now = NOW): GenerateInput {
  const recipient = { 'dsn-hard': 'hard-1@bounce.demomail.test', 'dsn-soft': 'soft-1@bounce.demomail.test', 'auto-reply': 'ooo-1@bounce.demomail.test' }[kind];
  return { outcome: { kind, recipient }, original, originalEnvelope: { mailFrom, rcptTo: [recipient] }, reportingMta: MTA, now };
}

function generated(t: Test, kind: SimulatedOutcome['kind'], original?: Buffer, mailFrom?: string): GeneratedMessage {
  const message = generateMessage(input(kind, original, mailFrom));
  if (!message) throw new Error(`no ${kind} generated`);
  wellFormed(t, message.raw);
  return message;
}

/** CRLF only, 7-bit header block with short lines, no line over RFC 5322's 998. */
function wellFormed(t: Test, raw: Buffer): void {
  const text = raw.toString('latin1');
  t.notMatch(text, /[^\r]\n|\r[^\n]/, 'CRLF line ends only');
  t.ok(text.split('\r\n').every((line) => line.length <= 998), 'no line over 998 characters');
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  t.match(head, /^[\x20-\x7e\r\n\t]*$/, '7-bit headers');
  t.ok(head.split('\r\n').every((line) => line.length <= 78), 'header lines folded to 78 characters');
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  return (Array.isArray(field) ? field : field ? [field] : []).flatMap((a) => a.value.map((v) => v.address ?? ''));
}

t.test('hard bounce: an RFC 3464 report to the return path', async (t) => {
  const dsn = generated(t, 'dsn-hard');
  t.same(dsn.envelope, { mailFrom: '', rcptTo: [RETURN_PATH] });
  const parsed = await simpleParser(dsn.raw);
  t.same(parsed.headers.get('content-type'), { value: 'multipart/report', params: { 'report-type': 'delivery-status', boundary: (parsed.headers.get('content-type') as { params: { boundary: string } }).params.boundary } });
  t.same(addresses(parsed.to), [RETURN_PATH]);
  t.same(parsed.from?.value, [{ address: 'MAILER-DAEMON@bounce.demomail.test', name: 'Mail Delivery System' }]);
  t.equal(parsed.subject, 'Undelivered Mail Returned to Sender');
  t.equal(parsed.headers.get('auto-submitted'), 'auto-replied');
  t.equal(parsed.date?.toISOString(), NOW.toISOString());
  t.match(parsed.messageId, /^<dsn\.[0-9a-f]{32}@bounce\.demomail\.test>$/);

  // mailparser reads the text part and the message/delivery-status part as text, in order.
  const [notice, status] = (parsed.text ?? '').split('Reporting-MTA:');
  t.match(notice, 'user unknown', 'CiviCRM pattern "user unknown" in the human-readable part');
  t.match(notice, 'Status: 5.1.1');
  t.match(notice, `host ${MTA}`);
  t.same(
    `Reporting-MTA:${status}`.trim().split('\n').map((l) => l.trim()),
    [
      `Reporting-MTA: dns; ${MTA}`,
      'Arrival-Date: Tue, 01 Dec 2026 03:00:00 +0000',
      '',
      'Final-Recipient: rfc822; hard-1@bounce.demomail.test',
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 <hard-1@bounce.demomail.test>: user unknown (simulated by demomail)',
      'Last-Attempt-Date: Tue, 01 Dec 2026 03:00:00 +0000',
    ],
  );
  const raw = dsn.raw.toString();
  t.match(raw, /\r\nContent-Type: message\/delivery-status\r\n/);
  t.same(parsed.attachments.map((a) => a.contentType), ['text/rfc822-headers']);
  const returned = parsed.attachments[0]?.content.toString() ?? '';
  t.equal(returned, MAILING.toString().slice(0, MAILING.indexOf('\r\n\r\n') + 2), 'the original headers, byte for byte');
  t.match(returned, 'X-CiviMail-Bounce: imap+b.7.42.', 'readable for CiviCRM\'s X-CiviMail-Bounce body scan');
});

t.test('soft bounce: 4.2.2, mailbox full', async (t) => {
  const dsn = generated(t, 'dsn-soft');
  const parsed = await simpleParser(dsn.raw);
  t.same(addresses(parsed.to), [RETURN_PATH]);
  t.match(parsed.text, /mailbox full[\s\S]*Status: 4\.2\.2[\s\S]*Action: failed\s+Status: 4\.2\.2\s+Diagnostic-Code: smtp; 452 4\.2\.2 <soft-1@bounce\.demomail\.test>: mailbox full \(simulated by demomail\)/);
  t.notMatch(parsed.text, '5.1.1');
});

t.test('DSNs route back by rules 1–2 and never bounce again', async (t) => {
  const plus = generated(t, 'dsn-hard');
  t.same(routeGenerated(plus.envelope, settings), { deliveries: [{ recipient: RETURN_PATH, mailbox: 'imap@demomail.test', rule: 'civimail-return-path' }], simulated: [] });

  const bare = generated(t, 'dsn-hard', MAILING, `b.7.42.${HASH}@demomail.test`);
  t.match(bare.raw.toString(), `\r\nTo: b.7.42.${HASH}@demomail.test\r\n`);
  t.same(routeGenerated(bare.envelope, { ...settings, bounceMailbox: 'bounces@demomail.test' }).deliveries, [
    { recipient: `b.7.42.${HASH}@demomail.test`, mailbox: 'bounces@demomail.test', rule: 'civimail-return-path' },
  ]);

  // A sender at the simulate domain: its DSN goes to an address that does not exist, and stops there.
  const loop = generated(t, 'dsn-hard', MAILING, 'hard-x@bounce.demomail.test');
  t.same(planRouting(loop.envelope, settings), { deliveries: [], simulated: [] }, 'planRouting alone is loop-safe too');
  t.equal(generateMessage({ ...input('dsn-hard', loop.raw, ''), outcome: { kind: 'dsn-hard', recipient: 'hard-x@bounce.demomail.test' } }), undefined, 'no DSN about a DSN');
});

t.test('deterministic for a fixed now; distinct ids otherwise', async (t) => {
  const id = (raw: Buffer | undefined): string => /\r\nMessage-ID: (\S+)\r\n/.exec(raw?.toString() ?? '')?.[1] ?? '';
  t.same(generateMessage(input('dsn-hard'))?.raw, generateMessage(input('dsn-hard'))?.raw);
  t.same(generateMessage(input('auto-reply'))?.raw, generateMessage(input('auto-reply'))?.raw);
  const ids = new Set([
    id(generateMessage(input('dsn-hard'))?.raw),
    id(generateMessage(input('dsn-hard', MAILING, RETURN_PATH, new Date(NOW.getTime() + 1)))?.raw),
    id(generateMessage(input('dsn-hard', Buffer.concat([MAILING, Buffer.from('P.S.\r\n')])))?.raw),
    id(generateMessage(input('dsn-soft'))?.raw),
  ]);
  t.equal(ids.size, 4);
});

t.test('auto-reply: RFC 3834 to Reply-To, else From, else the envelope sender', async (t) => {
  const reply = generated(t, 'auto-reply');
  t.same(reply.envelope, { mailFrom: '', rcptTo: [`imap+r.7.42.${HASH}@demomail.test`] }, 'Reply-To wins; null sender');
  const parsed = await simpleParser(reply.raw);
  t.same(addresses(parsed.to), [`imap+r.7.42.${HASH}@demomail.test`]);
  t.same(addresses(parsed.from), ['ooo-1@bounce.demomail.test']);
  t.equal(parsed.subject, 'Auto: Spendenaufruf für den Winter', 'non-ASCII subject survives');
  t.equal(parsed.headers.get('auto-submitted'), 'auto-replied');
  t.equal(parsed.inReplyTo, '<civimail.7.42@demomail.test>');
  t.same(parsed.references, '<civimail.7.42@demomail.test>');
  t.match(parsed.text, 'out of the office');
  t.match(parsed.messageId, /^<auto\.[0-9a-f]{32}@bounce\.demomail\.test>$/);
  t.match(parsed.headers.get('content-type'), { value: 'text/plain', params: { charset: 'utf-8' } });

  const noReplyTo = Buffer.from('From: Anna =?UTF-8?Q?M=C3=BCller?= <anna@example.org>\r\nSubject: Hi\r\nReferences: <a@x> <b@x>\r\nMessage-ID: <c@x>\r\n\r\nbody\r\n');
  const toFrom = generated(t, 'auto-reply', noReplyTo, 'bounce@elsewhere.example');
  t.same(toFrom.envelope.rcptTo, ['anna@example.org']);
  const fromParsed = await simpleParser(toFrom.raw);
  t.equal(fromParsed.subject, 'Auto: Hi');
  t.same(fromParsed.references, ['<a@x>', '<b@x>', '<c@x>']);

  const headerless = generated(t, 'auto-reply', Buffer.from('\r\njust a body\r\n'), 'someone@example.org');
  t.same(headerless.envelope.rcptTo, ['someone@example.org']);
  const headerlessParsed = await simpleParser(headerless.raw);
  t.equal(headerlessParsed.subject, 'Auto: (no subject)');
  t.equal(headerlessParsed.inReplyTo, undefined);
});

t.test('auto-reply: raw 8-bit and long subjects are encoded and folded', async (t) => {
  const subject = 'Einladung zur Mitgliederversammlung – bitte anmelden, Grüße aus Zürich und überall sonst auf der Welt';
  const composed = await new MailComposer({ from: 'info@demomail.test', to: 'ooo-1@bounce.demomail.test', subject, text: 'x', messageId: '<m@x>' }).compile().build();
  const raw8bit = Buffer.from(`From: info@demomail.test\nSubject: ${subject}\nMessage-ID: <m@x>\n\nx\n`);
  for (const [name, original] of [['nodemailer-encoded', composed], ['raw UTF-8, LF line ends', raw8bit]] as const) {
    const parsed = await simpleParser(generated(t, 'auto-reply', original).raw);
    t.equal(parsed.subject, `Auto: ${subject}`, name);
  }
});

t.test('auto-reply suppression', async (t) => {
  const withHeader = (line: string): Buffer => Buffer.from(`${line}\r\n${MAILING.toString()}`);
  for (const value of ['auto-generated', 'auto-replied', 'Auto-Replied; owner-email="x@y"', 'auto-notified']) {
    t.equal(generateMessage(input('auto-reply', withHeader(`Auto-Submitted: ${value}`))), undefined, `Auto-Submitted: ${value}`);
  }
  t.ok(generateMessage(input('auto-reply', withHeader('Auto-Submitted: No'))), 'Auto-Submitted: no is a person');
  t.ok(generateMessage(input('auto-reply')), 'Precedence: bulk (a CiviMail mailing) still gets its auto-reply');
  for (const kind of ['dsn-hard', 'dsn-soft', 'auto-reply'] as const) {
    t.equal(generateMessage(input(kind, MAILING, '')), undefined, `${kind}: nothing for the null sender`);
  }
  t.equal(generateMessage(input('auto-reply', Buffer.from('Subject: x\r\n\r\n'), '')), undefined, 'nowhere to reply');
  const generatedReply = generateMessage(input('auto-reply'));
  t.equal(generateMessage({ ...input('auto-reply', generatedReply?.raw), originalEnvelope: { mailFrom: 'x@y', rcptTo: [] } }), undefined, 'an auto-reply is never answered, even with a sender');
});

t.test('odd originals: never throws, the returned headers stay bounded and byte-exact', async (t) => {
  const folded = Buffer.from('Subject: a\r\n  folded\r\nX-Utf8: Grüße\r\nnot a header line\r\nFrom: a@b\r\n\r\nbody');
  const dsn = generated(t, 'dsn-hard', folded);
  const returned = (await simpleParser(dsn.raw)).attachments[0]?.content.toString('utf8');
  t.equal(returned, 'Subject: a\r\n  folded\r\nX-Utf8: Grüße\r\nFrom: a@b\r\n', 'continuations kept, UTF-8 kept, junk lines left out');
  t.match(dsn.raw.toString(), 'Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 8bit\r\n');

  const huge = Buffer.from(`${Array.from({ length: 5000 }, (_, i) => `X-Filler-${i}: ${'y'.repeat(60)}`).join('\r\n')}\r\n\r\nbody`);
  const big = generated(t, 'dsn-hard', huge);
  t.ok(big.raw.length < RETURNED_HEADERS_LIMIT + 4096, `a DSN about 380 KB of headers is ${big.raw.length} bytes`);

  for (const original of [Buffer.alloc(0), Buffer.from('\0\0\r\r\n\xff'), Buffer.from('no headers at all'), Buffer.from('From: "unterminated <x@\r\n\r\n')]) {
    for (const kind of ['dsn-hard', 'auto-reply'] as const) {
      const message = generateMessage(input(kind, original));
      if (message) wellFormed(t, message.raw);
    }
  }

  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom('dsn-hard', 'dsn-soft', 'auto-reply') as fc.Arbitrary<SimulatedOutcome['kind']>, (bytes, kind) => {
      const message = generateMessage(input(kind, Buffer.concat([Buffer.from('Subject: s\r\nFrom: a@b\r\n'), Buffer.from(bytes)])));
      const text = message?.raw.toString('latin1') ?? '';
      if (message === undefined) return kind === 'auto-reply';
      return !/[^\r]\n|\r[^\n]/.test(text) && /^[\x20-\x7e\r\n\t]*$/.test(text.slice(0, text.indexOf('\r\n\r\n')));
    }),
    { numRuns: 300 },
  );
});
