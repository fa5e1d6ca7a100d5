/**
 * Logging: one pino root per process, child loggers per component (`log.child({ component: 'capture' })`).
 * Secrets are redacted by key name wherever they appear, as a second line of defence behind non-enumerable
 * password fields.
 */
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'config.source.password',
  'key',
  '*.key',
  'passphrase',
  '*.passphrase',
];

export function createLogger(level: string, file?: string): Logger {
  // Synchronous writes: log volume at info level is low, and a process killed with SIGKILL (or stuck) must still
  // leave its last lines on disk for the post-mortem.
  const dest = file ? pino.destination({ dest: file, mkdir: true, sync: true }) : pino.destination(2);
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } }, dest);
}

/** A logger that drops everything, for library use and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
