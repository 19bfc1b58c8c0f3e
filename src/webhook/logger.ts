// pino JSON logs. Redaction is the backstop; the first line of defence is that no code path hands a
// pod object, an env value, a key or a full CA PEM to the logger at all.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

const LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** DEMOMAIL_LOG_LEVEL, defaulting to info; an unknown value falls back with a warning to log. */
export function logLevelFrom(env: NodeJS.ProcessEnv): { level: LevelWithSilent; warning?: string } {
  const raw = (env['DEMOMAIL_LOG_LEVEL'] ?? '').trim().toLowerCase();
  if (raw === '') return { level: 'info' };
  if ((LEVELS as readonly string[]).includes(raw)) return { level: raw as LevelWithSilent };
  return { level: 'info', warning: `DEMOMAIL_LOG_LEVEL="${raw}" is not one of ${LEVELS.join(', ')}; using info` };
}

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'keyPem',
  'caPem',
  'certPem',
  '*.keyPem',
  '*.caPem',
  '*.certPem',
  'object',
  '*.object',
  'env',
  '*.env',
  'password',
  '*.password',
];

export function createLogger(options: { level?: LevelWithSilent; destination?: DestinationStream; service?: string } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service ?? 'demomail-webhook' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
