// The fast path gives exactly mailparser's summary: message by message, on what nodemailer (CiviCRM's
// PHPMailer-like output included) composes, on hand-made edge cases, and on random compositions. It
// must also actually take the common messages (else it would only ever fall back).
import t, { type Test } from 'tap';
import fc from 'fast-check';
import MailComposer from 'nodemailer/lib/mail-composer';
import type Mail from 'nodemailer/lib/mailer';
import { randomBytes } from 'node:crypto';
import { quickParse } from './quick-summary.js';
import { summarizeMessage, summarizeWithMailparser } from './summary.js';
import { generateMessage } from './dsn.js';

const compose = (options: Mail.Options): Promise<Buffer> => new MailComposer({ date: new Date('2026-12-02T10:00:00Z'), messageId: '<fixed@demomail.test>', ...options }).compile().build();
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a3c5a1d90000000049454e44ae426082', 'hex');

async function same(t: Test, name: string, raw: Buffer, expectQuick: boolean | undefined): Promise<void> {
  const quick = await summarizeMessage(raw);
  const full = await summarizeWithMailparser(raw);
  // mailparser dates a message with an unparseable Date header "now": a millisecond apart in two calls.
  if (name === 'unparseable Date') for (const summary of [quick, full]) delete summary.date;
  t.same(quick, full, `${name}: the same summary as mailparser`);
  if (expectQuick !== undefined) t.equal(quickParse(raw) !== undefined, expectQuick, `${name}: ${expectQuick ? 'read by the fast path' : 'left to mailparser'}`);
}

t.test('composed messages: same summary, read by the fast path', async (t) => {
  const cases: [string, Mail.Options][] = [
    ['text only', { from: 'a@demomail.test', to: 'b@demomail.test', subject: 'Hello', text: 'Just text.\r\n.leading dot\r\n' }],
    ['text and HTML', { from: 'News <news@demomail.test>', to: ['a@example.org', 'b@example.org'], cc: 'c@example.org', subject: 'Newsletter', text: 'Spring is here.', html: '<p>Spring is <b>here</b>.</p>' }],
    [
      'CiviCRM-like receipt: HTML, text, inline logo, PDF',
      {
        from: '"Example Foundation" <info@demomail.test>',
        to: '"Jörg Müller" <joerg@example.org>',
        subject: 'Spendenbestätigung für Ihre Spende – danke! 🎉',
        text: 'Vielen Dank für Ihre Spende über 50 €.',
        html: '<p>Vielen Dank für Ihre Spende über <b>50 €</b>.</p><img src="cid:logo@demomail">',
        attachments: [
          { filename: 'logo.png', content: PNG, cid: 'logo@demomail' },
          { filename: 'Quittung 2026.pdf', content: randomBytes(3000), contentType: 'application/pdf' },
        ],
      },
    ],
    ['base64 text', { from: 'a@demomail.test', to: 'b@demomail.test', subject: 'b64', text: 'Grüße aus Köln, '.repeat(40), textEncoding: 'base64' }],
    ['quoted-printable text', { from: 'a@demomail.test', to: 'b@demomail.test', subject: 'qp', text: 'Grüße = equals, a very long line '.repeat(10), textEncoding: 'quoted-printable' }],
    ['attachment only, no text', { from: 'a@demomail.test', to: 'b@demomail.test', subject: 'file', attachments: [{ filename: 'data.csv', content: 'a,b\n1,2\n' }] }],
    ['text attachment with a filename', { from: 'a@demomail.test', to: 'b@demomail.test', subject: 'log', text: 'see the log', attachments: [{ filename: 'job.log', content: 'line 1\nline 2\n', contentType: 'text/plain' }] }],
    ['inline disposition with a Content-ID, no related', { from: 'a@demomail.test', to: 'b@demomail.test', subject: 'inline', text: 'x', attachments: [{ filename: 'p.png', content: PNG, contentDisposition: 'inline', cid: 'p@x' }] }],
    ['group address and encoded names', { from: '"Ünïcödé Sender" <u@demomail.test>', to: 'Team: a@example.org, "Bé" <b@example.org>;', subject: '=?UTF-8?B?4pyTIGVuY29kZWQ=?= words', text: 'x' }],
    ['empty text', { from: 'a@demomail.test', to: 'b@demomail.test', subject: 'empty', text: '' }],
  ];
  for (const [name, options] of cases) await same(t, name, await compose(options), true);
});

t.test('hand-made edge cases: same summary, unusual ones left to mailparser', async (t) => {
  const raw = (text: string) => Buffer.from(text, 'latin1');
  const cases: [string, Buffer, boolean | undefined][] = [
    ['LF line endings', raw('From: a@b.test\nTo: c@d.test\nSubject: lf\n\nbody\n'), true],
    ['no Content-Type, 8bit UTF-8 body', Buffer.from('From: a@b.test\r\nSubject: s\r\n\r\nGrüße\r\n'), true],
    ['preamble and epilogue', raw('Subject: p\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\npreamble\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b--\r\nepilogue\r\n'), true],
    ['nested multipart', raw('Subject: n\r\nContent-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary="i"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nplain\r\n--i\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--i--\r\n--o\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--o--\r\n'), true],
    ['missing close delimiter', raw('Subject: m\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n'), false],
    ['delimiter with trailing text', raw('Subject: m\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--bx\r\n--b--\r\n'), false],
    ['HTML only', raw('Subject: h\r\nContent-Type: text/html\r\n\r\n<style>p{}</style><p>Hello &amp; welcome</p>\r\n'), false],
    ['HTML beside text in mixed (converted to text by mailparser)', raw('Subject: h\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nt\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>h</p>\r\n--b--\r\n'), false],
    ['ISO-8859-1 text', raw('Subject: i\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe\r\n'), false],
    ['format=flowed', raw('Subject: f\r\nContent-Type: text/plain; format=flowed; delsp=yes\r\n\r\nsoft \r\nbreak\r\n'), false],
    ['embedded message', raw('Subject: e\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n'), false],
    ['unparseable Date', raw('Subject: d\r\nDate: not a date\r\n\r\nx\r\n'), false],
    ['mbox From line', raw('From a@b.test Mon Jan  1 00:00:00 2026\r\nSubject: mbox\r\n\r\nx\r\n'), undefined],
    ['headers only, no body', raw('Subject: only\r\n'), undefined],
    ['empty', Buffer.alloc(0), undefined],
    ['garbage', randomBytes(2000), undefined],
    ['invalid base64 characters', raw('Subject: b\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n'), false],
    ['unknown transfer encoding', raw('Subject: u\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n'), false],
    ['image in multipart/related without a Content-ID', raw('Subject: r\r\nContent-Type: multipart/related; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nt\r\n--b\r\nContent-Type: image/png\r\n\r\nx\r\n--b--\r\n'), true],
  ];
  for (const [name, message, quick] of cases) await same(t, name, message, quick);
});

t.test('generated DSNs and auto-replies: same summary', async (t) => {
  const original = await compose({ from: 'news@demomail.test', to: 'hard-1@bounce.demomail.test', subject: 'Mailing', text: 'Hello' });
  for (const [kind, recipient] of [['dsn-hard', 'hard-1'], ['dsn-soft', 'soft-1'], ['auto-reply', 'ooo-1']] as const) {
    const generated = generateMessage({
      outcome: { kind, recipient: `${recipient}@bounce.demomail.test` },
      original,
      originalEnvelope: { mailFrom: 'imap+b.7.42.0123456789abcdef@demomail.test', rcptTo: [`${recipient}@bounce.demomail.test`] },
      reportingMta: 'smtpdemo.demomail.svc.cluster.local',
      now: new Date('2026-12-02T10:00:00Z'),
    });
    if (!generated) {
      t.fail(`${kind}: nothing generated`);
      continue;
    }
    await same(t, kind, generated.raw, undefined);
  }
});

t.test('random compositions: same summary (property)', async (t) => {
  const text = fc.string({ unit: fc.constantFrom('a', 'ü', '€', ' ', '.', '\r\n', '\n', '=', '<', '>', '😀', 'x'), maxLength: 120 });
  const attachment = fc.record({
    filename: fc.constantFrom('a.pdf', 'b.png', 'c.txt', 'd.bin'),
    contentType: fc.constantFrom('application/pdf', 'image/png', 'text/plain', 'application/octet-stream'),
    cid: fc.option(fc.constantFrom('img1@x', 'img2@x'), { nil: undefined }),
    contentDisposition: fc.option(fc.constantFrom('inline' as const, 'attachment' as const), { nil: undefined }),
    content: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  });
  const options = fc.record({
    subject: text,
    text: fc.option(text, { nil: undefined }),
    html: fc.option(text.map((s) => `<p>${s}</p><img src="cid:img1@x">`), { nil: undefined }),
    textEncoding: fc.option(fc.constantFrom('quoted-printable' as const, 'base64' as const), { nil: undefined }),
    attachments: fc.array(attachment, { maxLength: 3 }),
    fromName: text,
  });
  let quick = 0;
  await fc.assert(
    fc.asyncProperty(options, async (o) => {
      const raw = await compose({
        from: { name: o.fromName, address: 'from@demomail.test' },
        to: 'to@example.org',
        subject: o.subject,
        ...(o.text !== undefined ? { text: o.text } : {}),
        ...(o.html !== undefined ? { html: o.html } : {}),
        ...(o.textEncoding ? { textEncoding: o.textEncoding } : {}),
        attachments: o.attachments.map((a) => ({ ...a, ...(a.cid ? {} : { cid: undefined }) })),
      });
      if (quickParse(raw)) quick++;
      t.same(await summarizeMessage(raw), await summarizeWithMailparser(raw));
      return true;
    }),
    { numRuns: 300 },
  );
  t.ok(quick > 150, `the fast path read ${quick} of 300`);
});
