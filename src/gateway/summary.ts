// Header facts and search text of a captured message, parsed once on capture (mailparser).
import { simpleParser, type AddressObject } from 'mailparser';
import type { MessageSummary } from './store.js';

/** Search text kept per message: enough for a demo's mails, bounded for 5,000 of them. */
export const SEARCH_TEXT_LIMIT = 32 * 1024;

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const list = field === undefined ? [] : Array.isArray(field) ? field : [field];
  return list.flatMap((a) => a.value).flatMap((v) => (v.address ? [v.address] : (v.group ?? []).flatMap((g) => (g.address ? [g.address] : []))));
}

/** Never throws: a message mailparser cannot read still gets stored, with what could be read. */
export async function summarizeMessage(raw: Buffer): Promise<MessageSummary> {
  try {
    const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true });
    const text = (parsed.text ?? (typeof parsed.html === 'string' ? parsed.html.replace(/<[^>]*>/g, ' ') : '')).replace(/\s+/g, ' ').trim();
    const date = parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date.toISOString() : undefined;
    return {
      subject: parsed.subject ?? '',
      from: parsed.from?.text ?? '',
      to: addresses(parsed.to),
      cc: addresses(parsed.cc),
      ...(date ? { date } : {}),
      ...(parsed.messageId ? { messageIdHeader: parsed.messageId } : {}),
      hasHtml: typeof parsed.html === 'string' && parsed.html.length > 0,
      attachmentCount: parsed.attachments.filter((a) => a.contentDisposition !== 'inline' || !a.contentId).length,
      snippet: text.slice(0, 200),
      text: text.slice(0, SEARCH_TEXT_LIMIT).toLowerCase(),
    };
  } catch {
    return { subject: '', from: '', to: [], cc: [], hasHtml: false, attachmentCount: 0, snippet: '', text: '' };
  }
}
