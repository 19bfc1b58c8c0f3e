// Generated messages (DESIGN §7 rule 3), pure: RFC 3464 delivery status notifications and RFC 3834
// auto-replies built from the captured original. Bytes in, bytes out; tested in dsn.test.ts.
//
// Decisions:
// - A soft bounce is `Action: failed` with `Status: 4.2.2`, what an MTA sends when it gives up on a
//   temporary error (Postfix at the end of its queue lifetime). `delayed` is a warning promising a
//   final report that would never come; CiviCRM counts either by its patterns ("mailbox full" → Quota).
// - The human-readable part repeats the Status and the diagnostic: CiviCRM classifies a bounce by
//   matching its patterns ("user unknown", "mailbox full") against the text of the body.
// - The original headers are a plain text/rfc822-headers part (never base64): when the DSN's To is not
//   a return path, CiviCRM scans the body for `Return-Path:` / `X-CiviMail-Bounce:` lines.
// - The auto-reply goes to Reply-To, else From (DESIGN §7), else the envelope sender. RFC 3834 §4 would
//   pick the Return-Path, but a demo wants the reply where replies to the mailing land (CiviMail sets
//   Reply-To to its reply-tracking address); the envelope sender is still the DSN's destination.
// - Both kinds use the null envelope sender (RFC 3834 §3.1.6 allows it for auto-replies): a bounce of
//   the auto-reply must not go to the simulated address, which does not exist, and mail from the
//   null sender never triggers another outcome (routing.ts), so generated mail cannot loop.
// - Nothing is generated for an original from the null sender (it is itself a notification), nor an
//   auto-reply to an original whose Auto-Submitted is anything but `no` (RFC 3834 §2). Precedence
//   bulk/list/junk is only a MAY there and is ignored: the demo is "a mailing to ooo-… gets an
//   auto-reply", and real responders (Exchange's) answer bulk mail too.
// - Message-ID and MIME boundary are a hash of the inputs: a fixed `now` gives the same bytes, and two
//   different originals never share an id.
import { createHash } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import { encodeWords } from 'nodemailer/lib/mime-funcs';
import { readHeaders, type HeaderBlock } from './header-fields.js';
import type { Envelope, SimulatedOutcome } from './routing.js';

export interface GeneratedMessage {
  /** Envelope of the generated message (DSNs use the null sender `<>`). */
  envelope: Envelope;
  raw: Buffer;
}

export interface GenerateInput {
  outcome: SimulatedOutcome;
  /** The original message as received. */
  original: Buffer;
  originalEnvelope: Envelope;
  /** Host name the DSN names as reporting MTA (the smtpdemo Service's FQDN). */
  reportingMta: string;
  now: Date;
}

/** Bounds the returned-headers part: a DSN about a message with huge headers stays small. */
export const RETURNED_HEADERS_LIMIT = 64 * 1024;

const CRLF = '\r\n';

/** One header field, folded at spaces near 78 columns; CR/LF in a value can never start a new field. */
function header(name: string, value: string): string {
  const words = value.replace(/[\r\n]+/g, ' ').split(' ');
  let line = `${name}:`;
  let out = '';
  for (const word of words) {
    if (word !== '' && line.length + 1 + word.length > 78 && line.trim() !== `${name}:`) {
      out += line + CRLF;
      line = ` ${word}`;
    } else {
      line += ` ${word}`;
    }
  }
  return out + line + CRLF;
}

function rfc5322Date(now: Date): string {
  return now.toUTCString().replace(/GMT$/, '+0000');
}

const ASCII = /^[\x00-\x7f]*$/;

/** Content-Type and transfer encoding of a UTF-8 text part: 7bit when it can be. */
function textHeaders(type: string, body: Buffer): string {
  const sevenBit = !body.some((b) => b >= 0x80);
  return `Content-Type: ${type}${CRLF}Content-Transfer-Encoding: ${sevenBit ? '7bit' : '8bit'}${CRLF}`;
}

function firstAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    // ASCII only: our headers stay 7-bit, and GreenMail takes no SMTPUTF8 address anyway.
    return addressparser(value, { flatten: true }).find((a) => /^[!-~]+@[!-~]+$/.test(a.address))?.address;
  } catch {
    return undefined;
  }
}

function messageIds(value: string | undefined): string[] {
  return value?.match(/<[!-;=?-~]+>/g) ?? [];
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at >= 0 ? address.slice(at + 1).toLowerCase() : '';
}

function inputHash(input: GenerateInput): string {
  const { outcome, originalEnvelope: env, reportingMta, now } = input;
  return createHash('sha256')
    .update(JSON.stringify([outcome.kind, outcome.recipient, env.mailFrom, env.rcptTo, reportingMta, now.getTime()]))
    .update(input.original)
    .digest('hex');
}

const BOUNCES = {
  'dsn-hard': { status: '5.1.1', reply: '550', reason: 'user unknown', prefix: 'hard', summary: 'be delivered to one or more recipients.' },
  'dsn-soft': { status: '4.2.2', reply: '452', reason: 'mailbox full', prefix: 'soft', summary: 'be delivered to one or more recipients: their mailbox stayed full.' },
} as const;

function deliveryStatusNotification(input: GenerateInput, original: HeaderBlock, hash: string): GeneratedMessage {
  const { outcome, reportingMta, now } = input;
  const kind = outcome.kind === 'dsn-soft' ? 'dsn-soft' : 'dsn-hard';
  const bounce = BOUNCES[kind];
  const returnPath = input.originalEnvelope.mailFrom;
  const simulateDomain = domainOf(outcome.recipient) || reportingMta;
  const diagnostic = `${bounce.reply} ${bounce.status} <${outcome.recipient}>: ${bounce.reason} (simulated by demomail)`;
  const date = rfc5322Date(now);
  const boundary = `=_demomail_${hash.slice(32, 56)}`;

  const notice = Buffer.from(
    [
      `This is the mail system at host ${reportingMta}.`,
      '',
      "I'm sorry to have to inform you that your message could not",
      bounce.summary,
      'Its headers are attached below.',
      '',
      `This bounce is simulated by demomail: every address at ${simulateDomain}`,
      `starting with "${bounce.prefix}" answers like this.`,
      '',
      `<${outcome.recipient}>: ${diagnostic}`,
      `Status: ${bounce.status}`,
      '',
    ].join(CRLF),
    'utf8',
  );
  const status = Buffer.from(
    [
      `Reporting-MTA: dns; ${reportingMta}`,
      `Arrival-Date: ${date}`,
      '',
      `Final-Recipient: rfc822; ${outcome.recipient}`,
      'Action: failed',
      `Status: ${bounce.status}`,
      `Diagnostic-Code: smtp; ${diagnostic}`,
      `Last-Attempt-Date: ${date}`,
      '',
    ].join(CRLF),
    'utf8',
  );

  const head = [
    header('From', `Mail Delivery System <MAILER-DAEMON@${simulateDomain}>`),
    header('To', returnPath),
    header('Subject', 'Undelivered Mail Returned to Sender'),
    header('Date', date),
    header('Message-ID', `<dsn.${hash.slice(0, 32)}@${simulateDomain}>`),
    header('Auto-Submitted', 'auto-replied'),
    header('MIME-Version', '1.0'),
    header('Content-Type', `multipart/report; report-type=delivery-status; boundary="${boundary}"`),
  ].join('');
  const part = (headers: string, body: Buffer): Buffer[] => [Buffer.from(`--${boundary}${CRLF}${headers}${CRLF}`), body, Buffer.from(CRLF)];
  const raw = Buffer.concat([
    Buffer.from(`${head}${CRLF}This is a MIME-encapsulated message.${CRLF}${CRLF}`),
    ...part(`Content-Description: Notification${CRLF}${textHeaders('text/plain; charset=utf-8', notice)}`, notice),
    ...part(`Content-Description: Delivery report${CRLF}${textHeaders('message/delivery-status', status)}`, status),
    ...part(`Content-Description: Undelivered Message Headers${CRLF}${textHeaders('text/rfc822-headers', original.raw)}`, original.raw),
    Buffer.from(`--${boundary}--${CRLF}`),
  ]);
  return { envelope: { mailFrom: '', rcptTo: [returnPath] }, raw };
}

function autoReply(input: GenerateInput, original: HeaderBlock, hash: string): GeneratedMessage | undefined {
  const { fields } = original;
  const autoSubmitted = fields.get('auto-submitted')?.split(';')[0]?.trim().toLowerCase();
  if (autoSubmitted !== undefined && autoSubmitted !== 'no') return undefined;
  const to = firstAddress(fields.get('reply-to')) ?? firstAddress(fields.get('from')) ?? input.originalEnvelope.mailFrom;
  if (!to) return undefined;

  const { outcome, now } = input;
  const simulateDomain = domainOf(outcome.recipient) || input.reportingMta;
  // The original subject stays as sent (its encoded words are valid after "Auto: "); raw 8-bit text
  // from a sloppy client is what needs RFC 2047 here.
  const subject = `Auto: ${fields.get('subject') || '(no subject)'}`;
  const originalId = messageIds(fields.get('message-id'))[0];
  const references = [...messageIds(fields.get('references') ?? fields.get('in-reply-to')), ...(originalId ? [originalId] : [])];
  const body = Buffer.from(
    [
      'I am out of the office and will read your message when I am back.',
      '',
      `This automatic reply is simulated by demomail: every address at ${simulateDomain}`,
      'starting with "ooo" answers like this.',
      '',
    ].join(CRLF),
    'utf8',
  );
  const head = [
    header('From', outcome.recipient),
    header('To', to),
    header('Subject', ASCII.test(subject) ? subject : encodeWords(subject, 'Q', 52)),
    header('Date', rfc5322Date(now)),
    header('Message-ID', `<auto.${hash.slice(0, 32)}@${simulateDomain}>`),
    ...(originalId ? [header('In-Reply-To', originalId)] : []),
    ...(references.length > 0 ? [header('References', references.join(' '))] : []),
    header('Auto-Submitted', 'auto-replied'),
    header('MIME-Version', '1.0'),
    textHeaders('text/plain; charset=utf-8', body),
  ].join('');
  return { envelope: { mailFrom: '', rcptTo: [to] }, raw: Buffer.concat([Buffer.from(head + CRLF), body]) };
}

/** The DSN or auto-reply for one simulated outcome; undefined when none may be sent (see above). */
export function generateMessage(input: GenerateInput): GeneratedMessage | undefined {
  if (input.originalEnvelope.mailFrom === '') return undefined;
  const original = readHeaders(input.original, RETURNED_HEADERS_LIMIT);
  const hash = inputHash(input);
  return input.outcome.kind === 'auto-reply' ? autoReply(input, original, hash) : deliveryStatusNotification(input, original, hash);
}
