import t from 'tap';
import { DEFAULT_DRAIN_SECONDS, drainSecondsFrom } from './main.js';
import { logLevelFrom } from './logger.js';

t.test('drainSecondsFrom', async (t) => {
  t.equal(drainSecondsFrom({}), DEFAULT_DRAIN_SECONDS);
  t.equal(drainSecondsFrom({ DEMOMAIL_DRAIN_SECONDS: '' }), DEFAULT_DRAIN_SECONDS);
  t.equal(drainSecondsFrom({ DEMOMAIL_DRAIN_SECONDS: '0' }), 0);
  t.equal(drainSecondsFrom({ DEMOMAIL_DRAIN_SECONDS: ' 0.25 ' }), 0.25);
  t.throws(() => drainSecondsFrom({ DEMOMAIL_DRAIN_SECONDS: '-1' }), /DEMOMAIL_DRAIN_SECONDS="-1"/);
  t.throws(() => drainSecondsFrom({ DEMOMAIL_DRAIN_SECONDS: '5s' }), /number of seconds/);
});

t.test('logLevelFrom', async (t) => {
  t.same(logLevelFrom({}), { level: 'info' });
  t.same(logLevelFrom({ DEMOMAIL_LOG_LEVEL: 'DEBUG' }), { level: 'debug' });
  t.same(logLevelFrom({ DEMOMAIL_LOG_LEVEL: 'silent' }), { level: 'silent' });
  const bad = logLevelFrom({ DEMOMAIL_LOG_LEVEL: 'verbose' });
  t.equal(bad.level, 'info');
  t.match(bad.warning, /DEMOMAIL_LOG_LEVEL="verbose" is not one of/);
});
