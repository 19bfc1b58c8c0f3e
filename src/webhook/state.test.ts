import t from 'tap';
import { settingsFrom } from '../config.js';
import { WebhookState, readiness } from './state.js';

t.test('readiness: both loaded and not draining', async (t) => {
  const table: Array<[string, Parameters<typeof readiness>[0], boolean, RegExp[]]> = [
    ['all good', { servingLoaded: true, caLoaded: true, draining: false }, true, []],
    ['draining', { servingLoaded: true, caLoaded: true, draining: true }, false, [/draining/]],
    ['no CA', { servingLoaded: true, caLoaded: false, draining: false, caProblem: 'file /x does not exist' }, false, [/mail CA not loaded: file \/x/]],
    ['no serving cert', { servingLoaded: false, caLoaded: true, draining: false }, false, [/^serving certificate not loaded$/]],
    ['nothing, draining', { servingLoaded: false, caLoaded: false, draining: true }, false, [/draining/, /serving/, /mail CA/]],
  ];
  for (const [name, input, ready, reasons] of table) {
    const result = readiness(input);
    t.equal(result.ready, ready, name);
    t.match(result.reasons, reasons, name);
    t.equal(result.reasons.length, reasons.length, name);
  }
});

t.test('WebhookState keeps the key out and rebuilds injection settings on a CA change', async (t) => {
  const state = new WebhookState(settingsFrom({}));
  t.equal(state.injection.caPem, '');
  t.notOk(state.caLoaded);
  state.setCa({ pem: 'PEM-A', fingerprints: ['sha256:aa'] });
  t.equal(state.injection.caPem, 'PEM-A');
  t.ok(state.caLoaded);
  state.setServing({ certPem: 'C', keyPem: 'SECRET', serialNumber: '01', fingerprint: 'sha256:bb', notAfter: new Date(0) });
  t.notOk('keyPem' in (state.serving ?? {}), 'the key is not kept in state');
  t.equal(state.readiness().ready, true);
  state.draining = true;
  t.equal(state.readiness().ready, false);
});
