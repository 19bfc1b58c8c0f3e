// Our own JSON body parser: fastify's default one answers every failure with the same "Body is
// not valid JSON" message, while a person debugging a webhook call wants to know whether the JSON
// was broken or was refused as a prototype-poisoning attempt, and where.
import { WebhookRequestError } from './errors.js';

// JSON.parse turns "\u005f_proto__" into "__proto__", so any escape sequence forces the full scan.
const MAYBE_POISONED = /__proto__|constructor|\\u/;

/** Parses a request body; throws WebhookRequestError(400) naming the problem. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') {
    throw new WebhookRequestError(400, 'request body is empty; send an admission.k8s.io/v1 AdmissionReview');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new WebhookRequestError(400, `request body is not valid JSON: ${syntaxErrorSummary(err)}`);
  }
  if (MAYBE_POISONED.test(text)) {
    const path = poisonedPath(value);
    if (path !== undefined) {
      throw new WebhookRequestError(
        400,
        `request body refused: key ${path} could poison object prototypes ("__proto__", or "constructor" holding "prototype"); an AdmissionReview never contains it`,
      );
    }
  }
  return value;
}

/**
 * V8 quotes a slice of the input in its message ('Unexpected token x, "..." is not valid JSON'); the
 * slice may be part of a secret, and this message is logged, so keep only the description.
 */
export function syntaxErrorSummary(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const withoutExcerpt = message.replace(/,?\s*(\.\.\.)?"[\s\S]*"(\.\.\.)?\s*is not valid JSON\s*$/, '');
  // Unknown future formats: cut at the first double quote rather than risk echoing input.
  const quote = withoutExcerpt.indexOf('"');
  return (quote >= 0 ? withoutExcerpt.slice(0, quote).trimEnd() : withoutExcerpt).slice(0, 200);
}

/** JSON-pointer-like path of the first dangerous key, or undefined when the value is clean. */
export function poisonedPath(value: unknown): string | undefined {
  // Iterative: a deeply nested hostile body must not overflow the stack.
  const stack: Array<{ node: unknown; path: string }> = [{ node: value, path: '' }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      node.forEach((item, index) => stack.push({ node: item, path: `${path}/${index}` }));
      continue;
    }
    for (const key of Object.keys(node)) {
      const child = (node as Record<string, unknown>)[key];
      if (key === '__proto__') return `${path}/__proto__`;
      if (key === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype')) {
        return `${path}/constructor/prototype`;
      }
      stack.push({ node: child, path: `${path}/${key}` });
    }
  }
  return undefined;
}
