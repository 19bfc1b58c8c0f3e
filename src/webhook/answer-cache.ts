// Remembered answers for repeated AdmissionReviews (issue 13). The replicas of one ReplicaSet, Job or
// StatefulSet-less Deployment reach the webhook as the same bytes except request.uid: a controller
// creates them from one template with generateName, and the API server has not given them a name or
// a uid yet when it calls us. The answer to such a review depends only on those bytes and on what the
// webhook holds (the injection settings), so the second replica onwards is answered from here without
// JSON.parse, planInjection or encoding: the same bytes out, with its own uid.
//
// Why this is sound without parsing: a review is looked up only when it opens with one of the two
// envelopes below, byte for byte, and its uid needs no escape (no quote, backslash or control character).
// The rest of the text is the key. Two texts with the same envelope and the same key differ only inside
// that one JSON string, so they parse to the same value but for request.uid, and the decision, the answer (uid
// aside), the log fields and the metrics are the same.
import { createHash } from 'node:crypto';
import type { InjectionSettings } from '../config.js';

/** How Go's encoding/json writes admission/v1 AdmissionReview (TypeMeta inline: kind first), and the other order. */
export const REVIEW_ENVELOPES = [
  '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"',
  '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"',
] as const;

/** The API server's uids are 36-character UUIDs; anything longer takes the full path. */
const MAX_UID_LENGTH = 128;
/** Only reviews up to this size are remembered (a CiviCRM-like pod's is 4-18 KiB; the body limit is 7 MiB). */
export const MAX_CACHED_REVIEW_CHARS = 256 * 1024;
export const DEFAULT_CACHE_LIMITS = { entries: 64, chars: 2 * 1024 * 1024, seen: 4096 };

/** A review's uid and what identifies the rest of it; undefined when the text is not in the expected form. */
export interface ReviewKey {
  uid: string;
  envelope: number;
  /** The text after the uid's closing quote. */
  rest: string;
}

export function reviewKey(text: string): ReviewKey | undefined {
  if (text.length > MAX_CACHED_REVIEW_CHARS) return undefined;
  const envelope = REVIEW_ENVELOPES.findIndex((head) => text.startsWith(head));
  if (envelope < 0) return undefined;
  const start = REVIEW_ENVELOPES[envelope]!.length;
  const limit = Math.min(text.length, start + MAX_UID_LENGTH + 1);
  for (let i = start; i < limit; i += 1) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      if (i === start) return undefined;
      return { uid: text.slice(start, i), envelope, rest: text.slice(i) };
    }
    // Inside a JSON string these would end it, escape what follows, or make the text invalid JSON.
    if (c === 0x5c /* \\ */ || c < 0x20) return undefined;
  }
  return undefined;
}

/**
 * Bounded by entry count and by characters held (keys + answers); the oldest entry goes first. Everything
 * is forgotten when the injection settings change (a CA reload), since the answers depend on them.
 *
 * An answer is kept only for a review seen before (its digest is in `seen`): the third replica onwards is
 * answered from here. A stream of reviews that never repeat (every pod named, or a hostile client) then
 * churns 50-byte digests instead of 15 KB keys and answers that would outlive the young generation and
 * cost the garbage collector and RSS (measured in bench:admission, "every review new").
 */
export class AnswerCache<Answer extends { chars: number }> {
  private readonly entries = new Map<string, { envelope: number; answer: Answer }>();
  private readonly seen = new Set<string>();
  private settings: InjectionSettings | undefined;
  private chars = 0;

  constructor(readonly limits: { entries: number; chars: number; seen: number } = DEFAULT_CACHE_LIMITS) {}

  get(key: ReviewKey, settings: InjectionSettings): Answer | undefined {
    if (settings !== this.settings) return undefined;
    const entry = this.entries.get(key.rest);
    return entry?.envelope === key.envelope ? entry.answer : undefined;
  }

  set(key: ReviewKey, settings: InjectionSettings, answer: Answer): void {
    if (settings !== this.settings) {
      this.entries.clear();
      this.chars = 0;
      this.settings = settings;
    }
    const size = key.rest.length + answer.chars;
    if (size > this.limits.chars || this.entries.has(key.rest) || !this.seenBefore(key)) return;
    // A Map iterates in insertion order: the first entry is the oldest.
    for (const [rest, old] of this.entries) {
      if (this.entries.size < this.limits.entries && this.chars + size <= this.limits.chars) break;
      this.entries.delete(rest);
      this.chars -= rest.length + old.answer.chars;
    }
    this.entries.set(key.rest, { envelope: key.envelope, answer });
    this.chars += size;
  }

  get size(): number {
    return this.entries.size;
  }

  /** True when this review (but for the uid) came before; otherwise notes it, the oldest note going first. */
  private seenBefore(key: ReviewKey): boolean {
    const digest = `${key.envelope}${createHash('sha256').update(key.rest).digest('base64')}`;
    if (this.seen.has(digest)) return true;
    if (this.seen.size >= this.limits.seen) this.seen.delete(this.seen.values().next().value!);
    this.seen.add(digest);
    return false;
  }

  /** Characters held: the keys and the answers. */
  get heldChars(): number {
    return this.chars;
  }
}
