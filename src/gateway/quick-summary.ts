// The summary's fast path: what `summary.ts` reads of a message with mailparser, read without
// mailparser's stream pipeline for the messages demo apps send (plain, multipart/alternative,
// attachments, inline images; UTF-8 or ASCII text; 7bit, 8bit, quoted-printable or base64).
//
// Why: mailparser costs ≈ 1–1.5 ms of CPU per 10 KB message (a setImmediate per MIME chunk, a decoder
// stream per part, every attachment base64-decoded only to be counted) and ≈ 25 ms per 1 MB: the
// gateway's largest per-message cost after TLS (`src/gateway/README.md`, "Performance").
//
// Same answers, not a second parser: the header block of every part goes through the very code
// mailparser uses (mailsplit's `MimeNode` for the part's type, disposition, charset and boundary,
// mailparser's own `processHeaders` for subject, addresses, date and ids), and mailparser's rules for
// what is an attachment and what is body text are followed line by line. Anything else returns
// undefined and the caller uses mailparser: an embedded message, a delivery report, another charset,
// format=flowed, an HTML part mailparser would convert to text, a malformed multipart, an
// unparseable date. `quick-summary.test.ts` checks both give the same summary, message by message.
import MimeNode from '@zone-eu/mailsplit/lib/mime-node.js';
import { decode as decodeQuotedPrintable } from 'libqp';
import libmime from 'libmime';
import { MailParser } from 'mailparser';
import type { AttachmentKind } from './summary.js';

/** What `summary.ts` reads of a parsed message (mailparser's names and shapes). */
export interface ParsedForSummary {
  headers: Map<string, unknown>;
  text?: string;
  html: string | false | undefined;
  attachments: AttachmentKind[];
}

interface HeaderLine {
  key: string;
  line: string;
}

/** mailparser's header processing, an internal method (pinned version, checked by the tests). */
interface HeaderProcessor {
  processHeaders(lines: HeaderLine[]): Map<string, unknown>;
}
const headerProcessor = new MailParser() as unknown as HeaderProcessor;

const TEXT_TYPES = ['text/plain', 'text/html'];
const PLAIN_ENCODINGS = new Set(['', '7bit', '8bit', 'binary']);
const UTF8_CHARSETS = new Set(['ascii', 'usascii', 'utf8']);
/** Header blocks larger than this go to mailparser (its own limit is 1 MiB). */
const MAX_HEADER_BYTES = 64 * 1024;
/** Deeper nesting goes to mailparser. */
const MAX_DEPTH = 8;
const BASE64_BODY = /^[A-Za-z0-9+/=\r\n]*$/;

interface TextPart {
  contentType: string;
  textContent: string;
  inAlternative: boolean;
}

interface Walk {
  root?: Map<string, unknown>;
  texts: TextPart[];
  attachments: AttachmentKind[];
  hasText: boolean;
  hasHtml: boolean;
}

class NotQuick extends Error {}

/** The parse `summary.ts` needs, or undefined when mailparser must read this message. Never throws. */
export function quickParse(raw: Buffer): ParsedForSummary | undefined {
  const walk: Walk = { texts: [], attachments: [], hasText: false, hasHtml: false };
  try {
    readPart(raw, 0, raw.length, undefined, [], walk);
    return assemble(walk);
  } catch {
    // NotQuick, or anything the header code threw: mailparser decides what such a message yields.
    return undefined;
  }
}

/**
 * The top-level headers alone, as mailparser maps them (a header-only summary for a message the fast
 * path cannot read, until mailparser has read it). Undefined when even the header block is unreadable.
 */
export function quickHeaders(raw: Buffer): Map<string, unknown> | undefined {
  try {
    return readHeaderBlock(raw, 0, raw.length, undefined).headers;
  } catch {
    return undefined;
  }
}

/** mailparser's getTextContent, for the cases kept here. */
function assemble(walk: Walk): ParsedForSummary | undefined {
  const text: string[] = [];
  const html: string[] = [];
  for (const part of walk.texts) {
    if (!part.textContent) continue;
    if (part.contentType === 'text/plain') {
      text.push(part.textContent);
      // mailparser adds its HTML form to the HTML when the message has HTML; only whether the HTML
      // is empty is read, and that form is empty exactly when the text is.
      if (!part.inAlternative && walk.hasHtml) html.push(part.textContent);
    } else {
      // An HTML part outside an alternative (or the only body) would be converted to text: mailparser's job.
      if (!part.inAlternative && walk.hasText) throw new NotQuick();
      html.push(part.textContent);
    }
  }
  const htmlParts = walk.texts.filter((p) => p.contentType === 'text/html');
  if (htmlParts.length > 0 && text.length === 0) return undefined; // the summary would read the HTML itself
  return {
    headers: walk.root ?? new Map(),
    ...(text.length > 0 ? { text: text.join('\n') } : {}),
    // Only read for emptiness ('' without HTML, as mailparser's updateImageLinks gives).
    html: html.join('<br/>\n'),
    attachments: walk.attachments,
  };
}

/** One MIME part: its header block through mailsplit's MimeNode, then its body or its children. */
function readPart(raw: Buffer, start: number, end: number, parent: MimeNode | undefined, ancestors: string[], walk: Walk): void {
  if (ancestors.length > MAX_DEPTH) throw new NotQuick();
  const { node, headers, headerLines, bodyStart: pos } = readHeaderBlock(raw, start, end, parent);
  if (!parent) {
    // mailparser turns an unparseable Date into "now": leave that to it.
    for (const line of headerLines.filter((l) => l.key === 'date')) {
      const value = Buffer.from(String(libmime.decodeHeader(line.line)?.value ?? '').trim(), 'binary').toString();
      if (Number.isNaN(new Date(value).getTime())) throw new NotQuick();
    }
    walk.root = headers;
  }
  const contentType = node.contentType || (parent ? '' : 'text/plain');
  if (!contentType || node.rfc822 || contentType === 'message/delivery-status') throw new NotQuick();
  if (node.multipart) {
    if (!node._boundary) throw new NotQuick();
    const parts = splitMultipart(raw, pos, end, node._boundary);
    for (const [partStart, partEnd] of parts) readPart(raw, partStart, partEnd, node, [...ancestors, contentType], walk);
    return;
  }
  // mailparser's createNode: which parts are attachments.
  let disposition = node.disposition || '';
  if (disposition && disposition !== 'attachment' && disposition !== 'inline') disposition = 'attachment';
  if (!disposition && !TEXT_TYPES.includes(contentType)) disposition = 'attachment';
  else disposition ||= 'inline';
  const isAttachment = !TEXT_TYPES.includes(contentType) || disposition !== 'inline';
  if (isAttachment) {
    const contentIds = headers.get('content-id');
    const contentId = ([] as unknown[]).concat(contentIds ?? []).shift() as string | undefined;
    walk.attachments.push({
      contentDisposition: disposition,
      ...(contentId !== undefined ? { contentId } : {}),
      ...(contentId !== undefined && ancestors.includes('multipart/related') ? { related: true } : {}),
    });
    return;
  }
  if (node.flowed) throw new NotQuick();
  if (!UTF8_CHARSETS.has(String(node.charset || 'utf-8').toLowerCase().replace(/[^a-z0-9]+/g, ''))) throw new NotQuick();
  if (contentType === 'text/plain') walk.hasText = true;
  else walk.hasHtml = true;
  walk.texts.push({ contentType, textContent: decodeBody(raw.subarray(pos, end), node.encoding || '').toString().replace(/\r?\n/g, '\n'), inAlternative: ancestors.includes('multipart/alternative') });
}

/** A part's header block through mailsplit's MimeNode, then mailparser's `processHeaders`. */
function readHeaderBlock(raw: Buffer, start: number, end: number, parent: MimeNode | undefined): { node: MimeNode; headers: Map<string, unknown>; headerLines: HeaderLine[]; bodyStart: number } {
  const node = new MimeNode(parent ?? false, {});
  let pos = start;
  for (;;) {
    const newline = raw.indexOf(0x0a, pos);
    if (newline < 0 || newline >= end) throw new NotQuick(); // no end of the header block
    const line = raw.subarray(pos, newline + 1);
    pos = newline + 1;
    if (pos - start > MAX_HEADER_BYTES) throw new NotQuick();
    if (!parent && pos - start === line.length && line.subarray(0, 5).toString('latin1') === 'From ') throw new NotQuick(); // an mbox line
    if (node.addHeaderChunk(line)) break;
  }
  node.parseHeaders();
  const headerLines = (node.headers as unknown as { getList(): HeaderLine[] }).getList();
  return { node, headers: headerProcessor.processHeaders(headerLines), headerLines, bodyStart: pos };
}

function decodeBody(body: Buffer, encoding: string): Buffer {
  if (PLAIN_ENCODINGS.has(encoding)) return body;
  const text = body.toString('latin1');
  if (encoding === 'base64') {
    if (!BASE64_BODY.test(text)) throw new NotQuick();
    return Buffer.from(text, 'base64');
  }
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(text);
  throw new NotQuick();
}

/**
 * The parts of a multipart body: between `--boundary` lines, up to the `--boundary--` line. Only a
 * well-formed body is split here (a delimiter line is the boundary alone, or closed with `--`; the
 * close line is present): anything else goes to mailparser, whose splitter copes with the rest.
 * The line ending before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
 */
function splitMultipart(raw: Buffer, start: number, end: number, boundary: Buffer): [number, number][] {
  const delimiters: { lineStart: number; bodyStart: number; close: boolean }[] = [];
  const marker = Buffer.concat([Buffer.from('--'), boundary]);
  for (let at = raw.indexOf(marker, start); at >= 0 && at < end; at = raw.indexOf(marker, at + 1)) {
    if (at !== start && raw[at - 1] !== 0x0a) continue; // not at a line start
    const newline = raw.indexOf(0x0a, at);
    const lineEnd = newline < 0 || newline >= end ? end : newline;
    const rest = raw.subarray(at + marker.length, lineEnd).toString('latin1').replace(/\r$/, '');
    if (rest === '' || rest === '--') delimiters.push({ lineStart: at, bodyStart: Math.min(lineEnd + 1, end), close: rest === '--' });
    else throw new NotQuick(); // a line that starts like a delimiter but is not one
    if (rest === '--') break;
  }
  const last = delimiters.at(-1);
  if (!last?.close || delimiters.length < 2) throw new NotQuick();
  const parts: [number, number][] = [];
  for (let i = 0; i < delimiters.length - 1; i++) {
    const from = (delimiters[i] as { bodyStart: number }).bodyStart;
    let to = (delimiters[i + 1] as { lineStart: number }).lineStart;
    if (raw[to - 1] === 0x0a) to--;
    if (raw[to - 1] === 0x0d) to--;
    parts.push([from, Math.max(from, to)]);
  }
  return parts;
}
