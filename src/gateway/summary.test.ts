import t from 'tap';
import { messageIdOf, summarizeMessage, summarizeNow } from './summary.js';

t.test('messageIdOf: the top-level Message-ID for the log line, without parsing the message', async (t) => {
  const table: [string, string, string | undefined][] = [
    ['plain', 'Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody', '<a@b>'],
    ['any case, no space', 'message-id:<a@b>\r\n\r\n', '<a@b>'],
    ['folded', 'Message-ID:\r\n <long.id@example.org>\r\nSubject: x\r\n\r\n', '<long.id@example.org>'],
    ['LF only', 'From: a@b\nMessage-Id: <lf@b>\n\nbody', '<lf@b>'],
    ['absent', 'Subject: x\r\n\r\nMessage-ID: <in-the-body@b>\r\n', undefined],
    ['empty', 'Message-ID:   \r\n\r\n', undefined],
    ['not a header that ends in message-id', 'X-Original-Message-ID: <no@b>\r\n\r\n', undefined],
    ['no header block end', 'Message-ID: <x@y>', '<x@y>'],
  ];
  for (const [name, raw, want] of table) t.equal(messageIdOf(Buffer.from(raw)), want, name);
});

t.test('summarizeNow: complete from the fast path, headers only for what mailparser must read, never throws', async (t) => {
  const simple = Buffer.from('From: Org <org@demomail.test>\r\nTo: a@demomail.test\r\nSubject: Receipt\r\nMessage-ID: <r@demomail.test>\r\n\r\nThank you.\r\n');
  const quick = summarizeNow(simple);
  t.equal(quick.complete, true);
  t.same(quick.summary, await summarizeMessage(simple));

  const report = Buffer.from(
    'From: MAILER-DAEMON@demomail.test\r\nTo: a@demomail.test\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n' +
      '--r\r\nContent-Type: text/plain\r\n\r\nIt bounced.\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; hard-1@bounce.demomail.test\r\nAction: failed\r\nStatus: 5.1.1\r\n--r--\r\n',
  );
  const partial = summarizeNow(report);
  t.equal(partial.complete, false, 'a delivery report is mailparser’s');
  t.equal(partial.summary.subject, 'Undelivered Mail');
  t.same(partial.summary.to, ['a@demomail.test']);
  t.equal(partial.summary.text, '');

  for (const junk of [Buffer.alloc(0), Buffer.from('no header block at all'), Buffer.from([0xff, 0xfe, 0x00, 0x0a])]) {
    const result = summarizeNow(junk);
    t.equal(typeof result.summary.subject, 'string', `${JSON.stringify(junk.toString('latin1'))}: a summary`);
  }
});
