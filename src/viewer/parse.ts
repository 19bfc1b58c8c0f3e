// Full MIME parse of a captured message (mailparser), kept in a small LRU keyed by message id: the
// page asks for the same message several times (view, HTML frame, cid images, attachments).
import { simpleParser, type ParsedMail } from 'mailparser';
import type { CapturedMessage, CaptureStore, StoreEvent } from '../gateway/store.js';

export class ParsedCache {
  // A Map iterates in insertion order: re-inserting on a hit makes the first key the least recent.
  private readonly entries = new Map<string, Promise<ParsedMail>>();

  constructor(
    store: CaptureStore,
    private readonly capacity = 50,
  ) {
    store.events.on('event', (event: StoreEvent) => {
      if (event.type === 'purged') this.entries.clear();
      else if (event.type === 'deleted') this.entries.delete(event.id);
      else if (event.type === 'evicted') for (const id of event.ids) this.entries.delete(id);
    });
  }

  parsed(message: CapturedMessage): Promise<ParsedMail> {
    let entry = this.entries.get(message.id);
    if (entry) this.entries.delete(message.id);
    else {
      // skipTextToHtml: a text-only mail has no HTML tab rather than a generated one.
      entry = simpleParser(message.raw, { skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true });
      entry.catch(() => this.entries.delete(message.id));
    }
    this.entries.set(message.id, entry);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return entry;
  }
}
