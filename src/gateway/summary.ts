// Header facts and search text of a captured message, parsed once on capture (mailparser).
//
// mailparser's streaming `MailParser`, not `simpleParser`: simpleParser collects every attachment into
// a Buffer (a 1 MB PDF: decoded, hashed and copied once more) only for us to count it. Here each
// attachment stream is drained and dropped; the fields are read exactly as simpleParser sets them
// (same options, same header mapping, same `updateImageLinks` pass over the HTML), so the summary is
// the same. Measured: see `src/gateway/README.md` ("Performance").
import { MailParser, type AddressObject, type AttachmentStream, type MessageText } from 'mailparser';
import { readHeaders } from './header-fields.js';
import { quickHeaders, quickParse } from './quick-summary.js';
import type { MessageSummary } from './store.js';

/** Search text kept per message: enough for a demo's mails, bounded for 5,000 of them. */
export const SEARCH_TEXT_LIMIT = 32 * 1024;

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const list = field === undefined ? [] : Array.isArray(field) ? field : [field];
  return list.flatMap((a) => a.value).flatMap((v) => (v.address ? [v.address] : (v.group ?? []).flatMap((g) => (g.address ? [g.address] : []))));
}

interface Parsed {
  headers: Map<string, unknown>;
  text?: string;
  html: string | false | undefined;
  /** What `isInlinePart` reads of every attachment, in order. */
  attachments: AttachmentKind[];
}

/** The fields of a mailparser attachment that say whether it is a file or part of the HTML. */
export interface AttachmentKind {
  contentDisposition?: string;
  contentId?: string;
  related?: boolean;
}

/**
 * A part the HTML shows (an image in multipart/related, or `inline` with a Content-ID) rather than a
 * file to download. The list's attachment count and the message view's Attachments tab both use it.
 */
export function isInlinePart(part: AttachmentKind): boolean {
  return part.related === true || (part.contentDisposition === 'inline' && Boolean(part.contentId?.replace(/^<|>$/g, '')));
}

/** What simpleParser would return for the fields the summary reads, without buffering attachments. */
function parse(raw: Buffer): Promise<Parsed> {
  return new Promise((resolve, reject) => {
    // checksumAlgo false: attachments are counted, never hashed (the summary has no use for an md5).
    const parser = new MailParser({ skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true, checksumAlgo: false });
    const parsed: Parsed = { headers: new Map(), html: '', attachments: [] };
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    parser.on('error', fail);
    parser.on('headers', (headers: Map<string, unknown>) => {
      parsed.headers = headers;
    });
    parser.on('data', (data: AttachmentStream | MessageText) => {
      if (data.type === 'text') {
        if (typeof data.text === 'string') parsed.text = data.text;
        return;
      }
      parsed.attachments.push({
        ...(data.contentDisposition !== undefined ? { contentDisposition: data.contentDisposition } : {}),
        ...(data.contentId !== undefined ? { contentId: data.contentId } : {}),
        ...(data.related === true ? { related: true } : {}),
      });
      // Drained, never kept: the parser goes on once the attachment is released.
      data.content.on('end', () => data.release?.());
      data.content.resume();
    });
    parser.on('end', () => {
      // skipImageLinks: this only yields the HTML as a string ('' without HTML), as in simpleParser.
      parser.updateImageLinks(
        (_attachment, done) => done(false),
        (err, html) => {
          if (err) return fail(err);
          if (settled) return;
          settled = true;
          parsed.html = html;
          resolve(parsed);
        },
      );
    });
    parser.end(raw);
  });
}

/** A string that does not share memory with a longer one (V8 makes slices of ≥ 13 characters views). */
function flatCopy(value: string): string {
  return value.length < 13 ? value : `${value} `.slice(0, -1);
}

const EMPTY_SUMMARY: MessageSummary = Object.freeze({ subject: '', from: '', to: [], cc: [], hasHtml: false, attachmentCount: 0, snippet: '', text: '' }) as MessageSummary;

/**
 * Never throws: a message mailparser cannot read still gets stored, with what could be read. The
 * fast path (`quick-summary.ts`) reads the common messages; the others go through mailparser.
 */
export async function summarizeMessage(raw: Buffer): Promise<MessageSummary> {
  try {
    return summaryOf(quickParse(raw) ?? (await parse(raw)));
  } catch {
    return { ...EMPTY_SUMMARY, to: [], cc: [] };
  }
}

/**
 * Synchronous, for the capture store's deferred summaries: the fast path's summary (`complete`), or,
 * for a message only mailparser can read, one from the top-level headers alone (subject, addresses,
 * date, Message-ID; no snippet, search text or attachment count) until `summarizeMessage` has read it.
 * Never throws.
 */
export function summarizeNow(raw: Buffer): { summary: MessageSummary; complete: boolean } {
  try {
    const quick = quickParse(raw);
    if (quick) return { summary: summaryOf(quick), complete: true };
    const headers = quickHeaders(raw);
    if (headers) return { summary: summaryOf({ headers, html: undefined, attachments: [] }), complete: false };
  } catch {
    // below: an empty summary, completed by mailparser
  }
  return { summary: { ...EMPTY_SUMMARY, to: [], cc: [] }, complete: false };
}

/**
 * The Message-ID header of the top-level header block, unfolded and trimmed, for the gateway's log
 * line (the summary that holds it is parsed later, in the store's quiet moment). Pure; reads at most
 * the first 64 KiB.
 */
export function messageIdOf(raw: Buffer): string | undefined {
  return readHeaders(raw.subarray(0, 64 * 1024), 0).fields.get('message-id') || undefined;
}

/** The summary mailparser alone gives: what the fast path is compared with in the tests. */
export async function summarizeWithMailparser(raw: Buffer): Promise<MessageSummary> {
  try {
    return summaryOf(await parse(raw));
  } catch {
    return { ...EMPTY_SUMMARY, to: [], cc: [] };
  }
}

function summaryOf({ headers, text: bodyText, html, attachments }: Parsed): MessageSummary {
  const header = <T>(key: string): T | undefined => (headers.has(key) ? (headers.get(key) as T) : undefined);
  const subject = header<string>('subject');
  const from = header<AddressObject>('from');
  const parsedDate = header<Date>('date');
  const messageId = header<string>('message-id');
  const text = (bodyText ?? (typeof html === 'string' ? html.replace(/<[^>]*>/g, ' ') : '')).replace(/\s+/g, ' ').trim();
  const date = parsedDate && !Number.isNaN(parsedDate.getTime()) ? parsedDate.toISOString() : undefined;
  return {
    subject: subject ?? '',
    from: from?.text ?? '',
    to: addresses(header<AddressObject | AddressObject[]>('to')),
    cc: addresses(header<AddressObject | AddressObject[]>('cc')),
    ...(date ? { date } : {}),
    ...(messageId ? { messageIdHeader: messageId } : {}),
    hasHtml: typeof html === 'string' && html.length > 0,
    attachmentCount: attachments.filter((a) => !isInlinePart(a)).length,
    // A copy, not a slice: V8 keeps a slice of a long string as a view that retains the whole body text.
    snippet: flatCopy(text.slice(0, 200)),
    // toLowerCase returns its input when nothing changes: copied too, so a long body is not retained.
    text: flatCopy(text.slice(0, SEARCH_TEXT_LIMIT).toLowerCase()),
  };
}
