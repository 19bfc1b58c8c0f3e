import fc from 'fast-check';
import t from 'tap';
import { admissionReview, civicrmPod } from '../../bench/fixtures.js';
import { injectionSettings, settingsFrom } from '../config.js';
import { AnswerCache, MAX_CACHED_REVIEW_CHARS, REVIEW_ENVELOPES, reviewKey, type ReviewKey } from './answer-cache.js';

// What kube-apiserver sends (Go's encoding/json: TypeMeta inline, kind first).
const goEncoded = (uid: string, rest = ',"kind":{"group":"","version":"v1","kind":"Pod"}}}') => `${REVIEW_ENVELOPES[0]}${uid}"${rest}`;

t.test('reviewKey: the uid and the rest, only for the two exact envelopes and a plain uid', async (t) => {
  const uid = '705ab4f5-6393-11e8-b7cc-42010a800002';
  t.same(reviewKey(goEncoded(uid)), { uid, envelope: 0, rest: '","kind":{"group":"","version":"v1","kind":"Pod"}}}' });
  // The repository's fixtures write apiVersion first.
  const fixture = JSON.stringify(admissionReview(civicrmPod(), { uid: 'abc-1' }));
  const key = reviewKey(fixture);
  t.equal(key?.uid, 'abc-1');
  t.equal(key?.envelope, 1);
  t.equal(key?.rest, fixture.slice(fixture.indexOf('abc-1') + 5));

  const refused: Array<[string, string]> = [
    ['whitespace (another encoder)', `{ "kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"${uid}"}}`],
    ['uid not first in request', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"kind":{},"uid":"x"}}'],
    ['escaped uid', goEncoded('a\\u0041b')],
    ['uid with a quote escape', `${REVIEW_ENVELOPES[0]}a\\"b"}}`],
    ['empty uid', goEncoded('')],
    ['uid with a control character', goEncoded('a\u0001b')],
    ['uid with a tab', goEncoded('a\tb')],
    ['uid longer than 128', goEncoded('a'.repeat(129))],
    ['unterminated', `${REVIEW_ENVELOPES[0]}abc`],
    ['v1beta1', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1","request":{"uid":"x"}}'],
    ['empty', ''],
    ['larger than the cached size', goEncoded('u', `"${' '.repeat(MAX_CACHED_REVIEW_CHARS)}}}`)],
  ];
  for (const [name, text] of refused) t.equal(reviewKey(text), undefined, name);
  t.equal(reviewKey(goEncoded('a'.repeat(128)))?.uid.length, 128, 'a 128-character uid is fine');
  t.equal(reviewKey(goEncoded('fRKiA37TQ7ilFa3pm5mmwg/0+_=.é'))?.uid, 'fRKiA37TQ7ilFa3pm5mmwg/0+_=.é', 'any character that needs no escape');
});

t.test('AnswerCache: kept from the second sighting; same rest and envelope hits, any uid; settings change forgets; bounded', async (t) => {
  const settings = injectionSettings(settingsFrom({}), 'CA');
  const answer = (chars: number) => ({ chars, id: chars });
  const key = (uid: string, rest: string, envelope = 0): ReviewKey => ({ uid, rest, envelope });
  /** As the route does it: every review is offered; only a repeat is kept. */
  const offer = (cache: AnswerCache<{ chars: number; id: number }>, k: ReviewKey, s: typeof settings, a: { chars: number; id: number }) => {
    cache.set(k, s, a);
    cache.set({ ...k, uid: `${k.uid}-again` }, s, a);
  };

  const cache = new AnswerCache<{ chars: number; id: number }>({ entries: 3, chars: 100, seen: 10 });
  cache.set(key('u1', 'A'), settings, answer(10));
  t.equal(cache.get(key('u2', 'A'), settings), undefined, 'not kept on first sight');
  cache.set(key('u2', 'A'), settings, answer(10));
  t.same(cache.get(key('u3', 'A'), settings), answer(10), 'kept on the second: another uid, same rest');
  t.equal(cache.get(key('u2', 'A', 1), settings), undefined, 'other envelope');
  t.equal(cache.get(key('u2', 'B'), settings), undefined, 'other rest');
  t.equal(cache.get(key('u2', 'A'), injectionSettings(settingsFrom({}), 'CA')), undefined, 'other settings object (a CA reload)');

  offer(cache, key('u', 'B'), settings, answer(11));
  offer(cache, key('u', 'C'), settings, answer(12));
  offer(cache, key('u', 'D'), settings, answer(13));
  t.equal(cache.size, 3, 'entry bound');
  t.equal(cache.get(key('u', 'A'), settings), undefined, 'oldest went first');
  t.ok(cache.get(key('u', 'D'), settings));
  offer(cache, key('u', 'E'), settings, answer(60));
  t.ok(cache.heldChars <= 100, `character bound (${cache.heldChars})`);
  t.ok(cache.get(key('u', 'E'), settings), 'the newest is kept');
  offer(cache, key('u', 'F'), settings, answer(200));
  t.equal(cache.get(key('u', 'F'), settings), undefined, 'an answer larger than the whole bound is not kept');

  const reloaded = injectionSettings(settingsFrom({}), 'CA2');
  cache.set(key('u', 'G'), reloaded, answer(5));
  t.equal(cache.size, 0, 'new settings: the old answers are gone');
  cache.set(key('u', 'E'), reloaded, answer(5));
  t.equal(cache.size, 1, 'a review seen under the old settings is still a repeat');
  t.equal(cache.heldChars, 6);
  t.equal(cache.get(key('u', 'E'), settings), undefined);

  // The notes of first sightings are bounded too: the oldest is forgotten.
  const small = new AnswerCache<{ chars: number; id: number }>({ entries: 3, chars: 100, seen: 2 });
  for (const rest of ['P', 'Q', 'R']) small.set(key('u', rest), settings, answer(1));
  small.set(key('u', 'P'), settings, answer(1));
  t.equal(small.size, 0, 'P was forgotten: seen once more, not yet kept');
  small.set(key('u', 'R'), settings, answer(1));
  t.equal(small.size, 1, 'R was still noted: kept');
});

t.test('property: two texts with the same key parse to the same value but for request.uid', async (t) => {
  const seed = Number(process.env['FC_SEED'] ?? 20261202);
  const uid = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => s.length <= 128 && !/["\\\u0000-\u001f]/.test(s));
  // Arbitrary JSON in the request (strings with quotes, escapes, "uid" keys of their own...), encoded both
  // ways. No integer-like keys: JavaScript would put them before uid, which Go's encoder never does.
  const text = fc.tuple(fc.constantFrom(0, 1), uid, fc.dictionary(fc.string().filter((k) => k !== 'uid' && !/^\d+$/.test(k)), fc.jsonValue(), { maxKeys: 6 })).map(([envelope, id, extra]) => {
    const request = { uid: id, ...extra, nested: { uid: id, '"uid":"': extra } };
    const review = envelope === 0 ? { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request } : { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
    return JSON.stringify(review);
  });
  fc.assert(
    fc.property(text, uid, (original, other) => {
      const key = reviewKey(original);
      if (key === undefined) throw new Error(`no key for ${original.slice(0, 120)}`);
      const replaced = REVIEW_ENVELOPES[key.envelope] + other + key.rest;
      const expected = JSON.parse(original) as { request: { uid: string } };
      expected.request.uid = other;
      t.strictSame(JSON.parse(replaced), expected);
      t.same(reviewKey(replaced), { ...key, uid: other });
    }),
    { seed, numRuns: 300 },
  );
});
