// The capture store (DESIGN §7): every message the gateway accepted or generated, in memory, bounded
// by count and bytes, oldest evicted first. The gateway writes it; the viewer (DESIGN §8) reads it.
// No I/O here. A client's message is stored without its summary (the header facts and search text,
// src/gateway/summary.ts): that is parsed in the quiet moment with the compression, or at once when a
// reader (the viewer, a search, a wait) asks for it first. Measured (bench:gateway, 2026-12-02): the
// summary was ≈ 0.3 ms of the gateway's CPU per 10 KB message, and on 2 busy cores every such ms is
// throughput (src/gateway/README.md, "Deferred summaries").
//
// Raw messages are kept compressed at rest (src/gateway/README.md, "Capture store"): `add` stores the
// bytes as given and returns at once; a background deflate (zlib on the libuv threadpool, one message
// at a time) swaps the compressed form in when it is smaller. `raw` on a record is a getter that
// inflates on read, so readers see the same bytes before and after. Bounds, `size` and `bytes` stay
// on raw bytes (what STORE_MAX_BYTES means); `heldBytes` is what the store actually holds.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { constants as zlibConstants, deflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import { summarizeMessage, summarizeNow } from './summary.js';

/** Which routing rule (DESIGN §7) decided where one recipient's copy went. */
export type RoutingRule =
  | 'direct'
  | 'plus-address'
  | 'civimail-return-path'
  | 'simulated-hard-bounce'
  | 'simulated-soft-bounce'
  | 'simulated-auto-reply';

/** One recipient's copy: the envelope address and the GreenMail mailbox it was delivered to. */
export interface Delivery {
  recipient: string;
  mailbox: string;
  rule: RoutingRule;
}

/** Where a message came from: a client over one of the listeners, or our own simulation. */
export type MessageOrigin = 'smtp' | 'submission' | 'smtps' | 'generated';

/** What a generated message is, and which capture caused it. */
export interface GeneratedFrom {
  kind: 'dsn-hard' | 'dsn-soft' | 'auto-reply';
  /** Id of the captured message that triggered it. */
  messageId: string;
  /** The simulated recipient (e.g. hard-1@bounce.demomail.test). */
  recipient: string;
}

/** Header facts parsed once on capture, for the list and the search. */
export interface MessageSummary {
  subject: string;
  /** Display form of From (`Name <addr>` or `addr`), empty when absent. */
  from: string;
  /** Addresses of To and Cc headers (not the envelope). */
  to: string[];
  cc: string[];
  /** Date header as ISO 8601, when present and valid. */
  date?: string;
  messageIdHeader?: string;
  hasHtml: boolean;
  attachmentCount: number;
  /** First ~200 characters of the text body, whitespace collapsed. */
  snippet: string;
  /** Lower-cased text body (truncated) for free-text search. */
  text: string;
}

export interface CaptureInput {
  raw: Buffer;
  envelope: { mailFrom: string; rcptTo: string[] };
  /** SMTP AUTH user, when the client authenticated. */
  authUser?: string;
  /** Negotiated TLS version (`TLSv1.3`), absent on a plaintext session. */
  tls?: string;
  clientAddress: string;
  origin: MessageOrigin;
  generatedFrom?: GeneratedFrom;
  deliveries: Delivery[];
  /** When known already (generated mail); otherwise the store parses it later (`Summarizer`). */
  summary?: MessageSummary;
  /** Defaults to now. */
  receivedAt?: Date;
}

export interface CapturedMessage extends Omit<CaptureInput, 'receivedAt' | 'raw' | 'summary'> {
  id: string;
  receivedAt: string;
  /** Raw message bytes. */
  size: number;
  /**
   * The message as received, byte for byte. A getter: once the store has compressed the message, each
   * read inflates it again (synchronously; ≈ 0.3 ms for 50 KB, ≈ 150 ms for 25 MB), so a reader that
   * needs the bytes more than once keeps the Buffer it got.
   */
  readonly raw: Buffer;
  /**
   * A getter too: parsed on first read when the quiet moment has not come yet (≈ 0.15 ms for 10 KB).
   * A message only mailparser can read shows its top-level headers until mailparser has read it
   * (asynchronously, a few ms).
   */
  readonly summary: MessageSummary;
}

/** How the store parses summaries it was not given (injected by tests). */
export interface Summarizer {
  /** Synchronous: `complete: false` means `later` must still read this message. Never throws. */
  now(raw: Buffer): { summary: MessageSummary; complete: boolean };
  later(raw: Buffer): Promise<MessageSummary>;
}

const SUMMARIZER: Summarizer = { now: summarizeNow, later: summarizeMessage };

export interface ListQuery {
  /** Free text and prefixes: `from:`, `to:`, `subject:`, `mailbox:`; terms are ANDed. */
  search?: string;
  /** Only messages delivered to this mailbox. */
  mailbox?: string;
  /** Paging over the newest-first list. */
  start?: number;
  limit?: number;
}

export interface ListResult {
  total: number;
  start: number;
  messages: CapturedMessage[];
}

export type StoreEvent =
  | { type: 'added'; message: CapturedMessage }
  /** A message mailparser had to read now has its whole summary (its body text is searchable). */
  | { type: 'summarized'; message: CapturedMessage }
  | { type: 'deleted'; id: string }
  | { type: 'evicted'; ids: string[] }
  | { type: 'purged' };

export interface StoreStats {
  messages: number;
  /** Bytes accounted to the store with each message at its raw size: what `maxBytes` bounds. */
  bytes: number;
  /** The same accounting with each message at the size actually held (compressed, once it is). */
  heldBytes: number;
  evictions: number;
}

export interface StoreLimits {
  maxMessages: number;
  maxBytes: number;
  /**
   * Compression waits until no message has been added for this long (default 250 ms): under a burst
   * the CPU goes to SMTP, and the backlog is compressed in the next pause. Memory stays bounded by
   * `maxBytes` either way (raw bytes count against it).
   */
  compressAfterQuietMs?: number;
}

export const COMPRESS_AFTER_QUIET_MS = 250;

/**
 * Bytes a message costs in the store: raw bytes plus its search text and snippet (the big parts) once
 * its summary is parsed; before that the summary holds nothing, and a message counts its raw bytes and
 * the fixed 512. The summary's text then grows it, and the quiet moment evicts beyond the bounds again.
 */
export function storedBytes(input: Pick<CaptureInput, 'raw' | 'summary'>): number {
  return input.raw.length + overheadBytes(input.summary);
}

function overheadBytes(summary: MessageSummary | undefined): number {
  return (summary ? summary.text.length + summary.snippet.length : 0) + 512;
}

/** deflateRaw level 1: fast (≈ 1 ms per 50 KB on the threadpool), most of level 6's gain on mail text. */
const DEFLATE_OPTIONS = { level: 1, memLevel: 8, strategy: zlibConstants.Z_DEFAULT_STRATEGY } as const;
/**
 * Huffman coding alone, for data LZ77 finds nothing to match in: base64 of a PDF or JPEG (64 symbols
 * in 8 bits: ≈ 76 % either way). Measured on 1 MB of such base64: 9 ms against 29 ms at level 1, same size.
 */
const HUFFMAN_OPTIONS = { level: 1, memLevel: 8, strategy: zlibConstants.Z_HUFFMAN_ONLY } as const;
/** Messages from this size on are sampled to choose between the two (smaller ones take level 1: cheap either way). */
export const SAMPLE_FROM_BYTES = 32 * 1024;
const SAMPLE_BYTES = 8 * 1024;

/**
 * Level 1 unless an 8 KiB sample from the middle of the message (where a large message's attachment
 * is) compresses to 70 % or more at level 1: then LZ77 would only burn CPU, and Huffman alone keeps
 * the same size. Text and HTML sample at 1–30 % and keep level 1 (Huffman alone would leave ≈ 62 %). Pure.
 */
export function deflateStrategy(rawLength: number, sampleLength: number, sampleCompressedLength: number): 'lz77' | 'huffman' {
  if (rawLength < SAMPLE_FROM_BYTES || sampleLength === 0) return 'lz77';
  return sampleCompressedLength >= 0.7 * sampleLength ? 'huffman' : 'lz77';
}

/**
 * Messages under this size are compressed on the main thread, synchronously, in the quiet moment
 * (a few at a time, then the event loop gets its turn); larger ones on the threadpool. Measured
 * 2026-12-02 on 10 KB messages: `deflateRaw` on the threadpool cost 0.30–0.37 ms of CPU per message,
 * `deflateRawSync` 0.16–0.18 ms (the same output); a 64 KiB message takes ≈ 0.5–1.7 ms here.
 */
export const SYNC_COMPRESS_BELOW_BYTES = 64 * 1024;
/*
 * Tried and dropped (2026-12-02): an 8 KiB window for those messages, so that zlib's four buffers stay
 * under the container's 32 KiB MALLOC_MMAP_THRESHOLD_ (no mmap per message). It saved ≈ 0.01 ms per
 * 10 KB message and cost a text/HTML newsletter 43 % instead of 27 %: its HTML part repeats the text
 * part from further back than 8 KiB.
 */
/** Longest run of synchronous compressions before the event loop gets its turn, ms. */
const SYNC_SLICE_MS = 2;

/** The options the store compresses `raw` with (`deflateStrategy` on a sample). */
export function compressionOptionsFor(raw: Buffer): typeof DEFLATE_OPTIONS | typeof HUFFMAN_OPTIONS {
  if (raw.length < SAMPLE_FROM_BYTES) return DEFLATE_OPTIONS;
  const middle = Math.floor(raw.length / 2);
  const sample = raw.subarray(Math.max(0, middle - SAMPLE_BYTES / 2), middle + SAMPLE_BYTES / 2);
  // Synchronous: ≈ 0.1 ms, and this only runs once no message has arrived for a while.
  return deflateStrategy(raw.length, sample.length, deflateRawSync(sample, DEFLATE_OPTIONS).length) === 'huffman' ? HUFFMAN_OPTIONS : DEFLATE_OPTIONS;
}
/** Messages below this are kept raw: the saving would not pay for the threadpool round trip. */
export const COMPRESS_MIN_BYTES = 1024;
/**
 * The compressed form is kept only when it saves at least 1/16 of the raw size: an already-compressed
 * attachment (base64 of a PDF or JPEG saves ≈ 25 %, a binary one nothing) is not worth an inflate on
 * every read for a few percent.
 */
export function worthKeeping(rawLength: number, compressedLength: number): boolean {
  return compressedLength <= rawLength - rawLength / 16;
}

/** Parses `from:bob subject:"a b" free` into field terms; unknown prefixes are free text. */
export function parseSearch(search: string): { field: 'from' | 'to' | 'subject' | 'mailbox' | 'any'; value: string }[] {
  const terms: { field: 'from' | 'to' | 'subject' | 'mailbox' | 'any'; value: string }[] = [];
  const re = /(?:(from|to|subject|mailbox):)?(?:"([^"]*)"|(\S+))/gi;
  for (const match of search.matchAll(re)) {
    const value = (match[2] ?? match[3] ?? '').toLowerCase();
    if (value === '') continue;
    const field = (match[1]?.toLowerCase() ?? 'any') as 'from' | 'to' | 'subject' | 'mailbox' | 'any';
    terms.push({ field, value });
  }
  return terms;
}

interface Entry {
  id: string;
  message: CapturedMessage;
  /** Raw bytes, or their deflateRaw form when `compressed`. */
  held: Buffer;
  compressed: boolean;
  rawLength: number;
  /** `storedBytes`: raw bytes plus what the summary holds (once parsed). */
  bytes: number;
  /** Undefined until parsed (`summaryOf`); `summaryComplete` false while mailparser still reads it. */
  summary: MessageSummary | undefined;
  summaryComplete: boolean;
  /** While mailparser reads it (`Summarizer.later`): settles when the summary is complete. */
  summaryLater: Promise<void> | undefined;
  /** The parts of the haystacks known on arrival (envelope, deliveries), lower-cased. */
  envelopeFrom: string;
  envelopeTo: string;
  /** Lower-cased haystacks, set with the summary (free text also searches `summary.text`, not copied). */
  from: string;
  to: string;
  subject: string;
  mailboxes: Set<string>;
}

/** Random id suffixes drawn this many at a time (one `randomBytes` call per message cost ≈ 1 % of the gateway's CPU). */
const ID_BATCH = 256;
const ID_RANDOM_BYTES = 5;

/**
 * The raw message in a Buffer of its own: a Buffer that is a view onto a larger ArrayBuffer (Node's
 * 8 KiB pool slab for small `Buffer.concat`/`Buffer.from` results, a slice of a socket read) would
 * keep all of that memory alive for as long as the message is stored.
 */
function ownBuffer(raw: Buffer): Buffer {
  if (raw.byteOffset === 0 && raw.buffer.byteLength === raw.length) return raw;
  const copy = Buffer.allocUnsafeSlow(raw.length);
  raw.copy(copy);
  return copy;
}

export class CaptureStore {
  private readonly entries = new Map<string, Entry>();
  /** A record's entry, also after it left the store (a reader may still hold it). */
  private readonly entryOf = new WeakMap<CapturedMessage, Entry>();
  private idRandom = Buffer.alloc(0);
  private idRandomAt = 0;
  /** mailparser summaries in flight (`Summarizer.later`): `compressed()` waits for them too. */
  private summariesLater = 0;
  private bytes = 0;
  private heldBytes = 0;
  private evictions = 0;
  private sequence = 0;
  /** Entries waiting for background work (their summary, compression), oldest first; one at a time. */
  private readonly pending: Entry[] = [];
  private compressing = false;
  private lastAddedAt = 0;
  private quietTimer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  readonly events = new EventEmitter();

  constructor(
    readonly limits: StoreLimits,
    private readonly summarizer: Summarizer = SUMMARIZER,
  ) {
    // The viewer's SSE clients each hold a listener; many browser tabs are not a leak.
    this.events.setMaxListeners(1000);
  }

  /** Stores a message, evicting the oldest ones beyond the bounds; returns the stored record. */
  add(input: CaptureInput): CapturedMessage {
    const id = `${(++this.sequence).toString(36).padStart(6, '0')}${this.idSuffix()}`;
    const { receivedAt, raw: _raw, summary: _summary, ...rest } = input;
    const raw = ownBuffer(input.raw);
    const entry: Entry = {
      id,
      message: undefined as unknown as CapturedMessage, // set just below (its getters close over the entry)
      held: raw,
      compressed: false,
      rawLength: raw.length,
      bytes: storedBytes(input),
      summary: undefined,
      summaryComplete: false,
      summaryLater: undefined,
      envelopeFrom: input.envelope.mailFrom.toLowerCase(),
      envelopeTo: `${input.envelope.rcptTo.join(' ')} ${input.deliveries.map((d) => `${d.recipient} ${d.mailbox}`).join(' ')}`.toLowerCase(),
      from: '',
      to: '',
      subject: '',
      mailboxes: new Set(input.deliveries.map((d) => d.mailbox.toLowerCase())),
    };
    // Getters in the literal (enumerable, like plain fields: a spread or JSON of the record has the
    // bytes and the summary), not defineProperty, which would turn every record into a slow dictionary.
    const rawOf = () => this.rawOf(entry);
    const summaryOf = () => this.summaryOf(entry);
    entry.message = {
      ...rest,
      id,
      receivedAt: (receivedAt ?? new Date()).toISOString(),
      size: raw.length,
      get raw() {
        return rawOf();
      },
      get summary() {
        return summaryOf();
      },
    };
    const message = entry.message;
    this.entryOf.set(message, entry);
    if (input.summary) this.setSummary(entry, input.summary, true);
    this.entries.set(id, entry);
    this.bytes += entry.bytes;
    this.heldBytes += entry.bytes;
    this.evictBeyondBounds();
    this.lastAddedAt = performance.now();
    if (raw.length >= COMPRESS_MIN_BYTES || !entry.summary) {
      this.pending.push(entry);
      this.compressNext();
    }
    this.events.emit('event', { type: 'added', message } satisfies StoreEvent);
    return message;
  }

  /**
   * Oldest first, until both bounds hold again; never the newest message, even when it alone exceeds
   * the byte bound. After an add, and after summaries were parsed (their search text counts).
   */
  private evictBeyondBounds(): void {
    const evicted: string[] = [];
    for (const [oldId, old] of this.entries) {
      if (this.entries.size <= this.limits.maxMessages && this.bytes <= this.limits.maxBytes) break;
      if (this.entries.size === 1) break; // the newest, alone
      this.remove(old);
      evicted.push(oldId);
    }
    this.evictions += evicted.length;
    if (evicted.length > 0) this.events.emit('event', { type: 'evicted', ids: evicted } satisfies StoreEvent);
  }

  get(id: string): CapturedMessage | undefined {
    return this.entries.get(id)?.message;
  }

  /**
   * Settles once `message.summary` is complete: at once for most messages (parsed now if it was not
   * yet), after mailparser for the few the fast path cannot read. What the viewer awaits before it
   * shows a summary, so it never shows the headers-only one.
   */
  summarized(message: CapturedMessage): Promise<void> {
    const entry = this.entryOf.get(message);
    if (!entry) return Promise.resolve();
    this.summaryOf(entry);
    return entry.summaryLater ?? Promise.resolve();
  }

  /** Newest first, filtered by mailbox and search terms (all must match), then paged. */
  list(query: ListQuery = {}): ListResult {
    const terms = parseSearch(query.search ?? '');
    const mailbox = query.mailbox?.toLowerCase();
    const start = Math.max(0, query.start ?? 0);
    const limit = Math.max(0, Math.min(query.limit ?? 50, 1000));
    const all = [...this.entries.values()];
    const messages: CapturedMessage[] = [];
    let total = 0;
    for (let i = all.length - 1; i >= 0; i--) {
      const entry = all[i] as Entry;
      if (mailbox && !entry.mailboxes.has(mailbox)) continue;
      if (terms.length > 0) this.summaryOf(entry); // the haystacks come with the summary
      if (!terms.every((term) => matches(entry, term))) continue;
      if (total >= start && messages.length < limit) messages.push(entry.message);
      total++;
    }
    return { total, start, messages };
  }

  /** Every mailbox that received at least one stored message, sorted. */
  mailboxes(): string[] {
    const all = new Set<string>();
    for (const entry of this.entries.values()) for (const m of entry.mailboxes) all.add(m);
    return [...all].sort();
  }

  delete(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.remove(entry);
    this.events.emit('event', { type: 'deleted', id } satisfies StoreEvent);
    return true;
  }

  purge(): void {
    this.entries.clear();
    this.pending.length = 0; // a compression in flight finds its entry gone and drops the result
    this.bytes = 0;
    this.heldBytes = 0;
    this.events.emit('event', { type: 'purged' } satisfies StoreEvent);
  }

  stats(): StoreStats {
    return { messages: this.entries.size, bytes: this.bytes, heldBytes: this.heldBytes, evictions: this.evictions };
  }

  /** Resolves once no background work (summaries, compression) is queued or running (tests, benchmarks). */
  compressed(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private idle(): boolean {
    return !this.compressing && this.pending.length === 0 && this.summariesLater === 0;
  }

  private resolveIdleWaiters(): void {
    if (!this.idle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Unpredictable id suffixes (ids are not secrets, but need not be guessable either), from a batch. */
  private idSuffix(): string {
    if (this.idRandomAt + ID_RANDOM_BYTES > this.idRandom.length) {
      this.idRandom = randomBytes(ID_RANDOM_BYTES * ID_BATCH);
      this.idRandomAt = 0;
    }
    this.idRandomAt += ID_RANDOM_BYTES;
    return this.idRandom.toString('hex', this.idRandomAt - ID_RANDOM_BYTES, this.idRandomAt);
  }

  private rawOf(entry: Entry): Buffer {
    return entry.compressed ? inflateRawSync(entry.held) : entry.held;
  }

  /** The entry's summary, parsed now if it has not been yet (a message mailparser must read: headers now, the rest when it has). */
  private summaryOf(entry: Entry): MessageSummary {
    if (entry.summary) return entry.summary;
    const raw = this.rawOf(entry);
    const { summary, complete } = this.summarizer.now(raw);
    this.setSummary(entry, summary, complete);
    if (!complete) {
      this.summariesLater++;
      entry.summaryLater = this.summarizer
        .later(raw)
        .then(
          (full) => this.setSummary(entry, full, true),
          // summarizeMessage never rejects; another summarizer's failure keeps the headers-only summary
          () => this.setSummary(entry, summary, true),
        )
        .finally(() => {
          entry.summaryLater = undefined;
          this.summariesLater--;
          if (this.entries.get(entry.id) === entry) this.events.emit('event', { type: 'summarized', message: entry.message } satisfies StoreEvent);
          this.evictBeyondBounds();
          this.resolveIdleWaiters();
        });
    }
    return summary;
  }

  /**
   * Sets the summary, its haystacks and the bytes it adds. Eviction beyond the bounds is left to the
   * caller's moment (the quiet-moment work, mailparser's completion, the next add): a reader's `list`
   * must not see entries vanish under it.
   */
  private setSummary(entry: Entry, summary: MessageSummary, complete: boolean): void {
    if (entry.summaryComplete) return;
    entry.summary = summary;
    entry.summaryComplete = complete;
    entry.from = `${summary.from} ${entry.envelopeFrom}`.toLowerCase();
    entry.to = `${summary.to.join(' ')} ${summary.cc.join(' ')} ${entry.envelopeTo}`.toLowerCase();
    entry.subject = summary.subject.toLowerCase();
    const bytes = entry.rawLength + overheadBytes(summary);
    if (this.entries.get(entry.id) === entry) {
      this.bytes += bytes - entry.bytes;
      this.heldBytes += bytes - entry.bytes;
    }
    entry.bytes = bytes;
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.id);
    this.bytes -= entry.bytes;
    this.heldBytes -= entry.bytes - entry.rawLength + entry.held.length;
    // Still queued: skipped when its turn comes (`compressNext` checks membership), nothing to undo.
  }

  private compressNext(): void {
    if (this.compressing || this.quietTimer) return;
    const quietFor = this.limits.compressAfterQuietMs ?? COMPRESS_AFTER_QUIET_MS;
    const wait = this.lastAddedAt + quietFor - performance.now();
    if (wait > 0 && this.pending.length > 0) {
      // Measured (bench:gateway, 1 MB messages): compressing during a burst cost 28 ms of CPU per
      // message and the throughput ratio fell from 0.91 to 0.78 on 2 cores.
      this.quietTimer = setTimeout(() => {
        this.quietTimer = undefined;
        this.compressNext();
      }, wait);
      return;
    }
    const entry = this.nextPending();
    if (!entry) return this.resolveIdleWaiters();
    this.compressing = true;
    if (entry.rawLength < SYNC_COMPRESS_BELOW_BYTES) return this.compressSlice(entry);
    this.summaryOf(entry);
    this.evictBeyondBounds();
    deflateRaw(entry.held, compressionOptionsFor(entry.held), (err, out) => {
      this.compressing = false;
      if (!err) this.keepCompressed(entry, out);
      this.compressNext();
    });
  }

  /**
   * Small messages here and now, `first` and those queued after it, for up to SYNC_SLICE_MS or until a
   * large one is next; then the event loop, and (after a new message, the quiet wait again) the next slice.
   */
  private compressSlice(first: Entry): void {
    const started = performance.now();
    for (let entry: Entry | undefined = first; entry; entry = this.nextPending()) {
      if (entry.rawLength >= SYNC_COMPRESS_BELOW_BYTES) {
        this.pending.unshift(entry);
        break;
      }
      this.summaryOf(entry);
      if (entry.rawLength >= COMPRESS_MIN_BYTES) this.keepCompressed(entry, deflateRawSync(entry.held, compressionOptionsFor(entry.held)));
      if (performance.now() - started >= SYNC_SLICE_MS) break;
    }
    this.evictBeyondBounds(); // the summaries parsed in this slice count now
    setImmediate(() => {
      this.compressing = false;
      this.compressNext();
    });
  }

  /** The next queued entry that is still stored (deleted or evicted ones are skipped). */
  private nextPending(): Entry | undefined {
    let entry: Entry | undefined;
    while ((entry = this.pending.shift()) && this.entries.get(entry.id) !== entry);
    return entry;
  }

  /** Swaps the compressed form in, unless the entry is gone (deleted, evicted or purged meanwhile: the result is dropped) or it saves too little. */
  private keepCompressed(target: Entry, out: Buffer): void {
    if (this.entries.get(target.id) !== target || target.compressed || !worthKeeping(target.rawLength, out.length)) return;
    const held = ownBuffer(out); // a small result can be a view onto zlib's 16 KiB output chunk
    this.heldBytes += held.length - target.held.length;
    target.held = held;
    target.compressed = true;
  }
}

/** `entry`'s summary must be known (`summaryOf`). */
function matches(entry: Entry, term: { field: string; value: string }): boolean {
  switch (term.field) {
    case 'from':
      return entry.from.includes(term.value);
    case 'to':
      return entry.to.includes(term.value);
    case 'subject':
      return entry.subject.includes(term.value);
    case 'mailbox':
      return [...entry.mailboxes].some((m) => m.includes(term.value));
    default:
      // Each haystack on its own (the body text is not copied into a combined one): a term never
      // spans two fields, which the old newline-joined haystack allowed only for terms with a newline.
      return entry.from.includes(term.value) || entry.to.includes(term.value) || entry.subject.includes(term.value) || (entry.summary?.text.includes(term.value) ?? false);
  }
}
