import t from 'tap';
import { WebhookRequestError } from './errors.js';
import { parseJsonBody, poisonedPath, syntaxErrorSummary } from './json-body.js';

t.test('parseJsonBody', async (t) => {
  t.same(parseJsonBody('{"a":[1,{"b":null}]}'), { a: [1, { b: null }] });
  t.same(parseJsonBody('{"constructor":"just a string","c":{"constructor":{"name":"x"}}}'), {
    constructor: 'just a string',
    c: { constructor: { name: 'x' } },
  }, 'a "constructor" key without "prototype" is data, not an attack');
  t.same(parseJsonBody('{"env":[{"name":"A","value":"\\u00e9"}]}'), { env: [{ name: 'A', value: 'é' }] }, 'escapes decode');

  const refused: Array<[string, string, RegExp]> = [
    ['empty', '   ', /empty/],
    ['syntax', '{"a": nope}', /not valid JSON: Unexpected token/],
    ['truncated', '{"a": [1, 2', /not valid JSON/],
    ['__proto__ top level', '{"__proto__":{"x":1}}', /key \/__proto__ could poison/],
    ['__proto__ nested in array', '{"a":[{"b":{"__proto__":{}}}]}', /key \/a\/0\/b\/__proto__/],
    ['escaped __proto__', '{"\\u005f_proto__":{}}', /__proto__/],
    ['constructor.prototype', '{"x":{"constructor":{"prototype":{"y":1}}}}', /\/x\/constructor\/prototype/],
  ];
  for (const [name, body, message] of refused) {
    const error = t.throws(() => parseJsonBody(body), WebhookRequestError, name) as unknown as WebhookRequestError;
    t.equal(error.statusCode, 400, name);
    t.match(error.message, message, name);
  }
  t.equal(({} as Record<string, unknown>)['x'], undefined, 'no prototype was polluted');
});

t.test('syntax error messages drop the quoted input (it may be part of a secret)', async (t) => {
  let err: unknown;
  try {
    JSON.parse('{"password": hunter2-secret}');
  } catch (e) {
    err = e;
  }
  const summary = syntaxErrorSummary(err);
  t.notMatch(summary, /hunter2/);
  t.match(summary, /Unexpected token/);
  t.equal(syntaxErrorSummary('plain'), 'plain');
});

t.test('poisonedPath survives deep nesting without recursion', async (t) => {
  let deep: unknown = { leaf: true };
  for (let i = 0; i < 100_000; i += 1) deep = [deep];
  t.equal(poisonedPath(deep), undefined);
  t.equal(poisonedPath(null), undefined);
  t.equal(poisonedPath('__proto__'), undefined, 'a string value is harmless');
});

t.test('syntaxErrorSummary over the message shapes V8 produces', async (t) => {
  const shapes: Array<[string, string]> = [
    [`Unexpected token 'h', ..."assword": hunter2-se"... is not valid JSON`, `Unexpected token 'h'`],
    [`Unexpected token 's', "{"a": secretvalue}" is not valid JSON`, `Unexpected token 's'`],
    ['Unexpected end of JSON input', 'Unexpected end of JSON input'],
    ["Expected property name or '}' in JSON at position 1 (line 1 column 2)", "Expected property name or '}' in JSON at position 1 (line 1 column 2)"],
    ['Some future format quoting "secret" input', 'Some future format quoting'],
  ];
  for (const [message, expected] of shapes) t.equal(syntaxErrorSummary(new SyntaxError(message)), expected, message);
});
