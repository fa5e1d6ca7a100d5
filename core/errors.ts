/**
 * The one error root of tidemark. Every error that crosses a module boundary is a TidemarkError (or a subclass)
 * carrying `retriable` (may the same call succeed if tried again?), a stable `code`, context fields, and the
 * original `cause`. Unknown errors are NOT retriable (see STYLE.md §5). Messages never contain secrets: callers
 * put host/port/user in `context`, never passwords.
 */
export interface ErrorContext {
  [key: string]: string | number | bigint | boolean | undefined | null;
}

export interface TidemarkErrorOptions {
  code: string;
  retriable?: boolean;
  cause?: unknown;
  context?: ErrorContext;
}

export class TidemarkError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(message: string, opts: TidemarkErrorOptions) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TidemarkError';
    this.code = opts.code;
    this.retriable = opts.retriable ?? false;
    this.context = opts.context ?? {};
  }
}

/** Configuration is wrong: names the key and the expected value. Never retriable. */
export class ConfigError extends TidemarkError {
  constructor(message: string, context: ErrorContext = {}) {
    super(message, { code: 'CONFIG', retriable: false, context });
    this.name = 'ConfigError';
  }
}

/** Stored bytes are damaged (journal, cursor, codec). Never retriable: a human must look. */
export class CorruptionError extends TidemarkError {
  constructor(message: string, context: ErrorContext = {}, cause?: unknown) {
    super(message, { code: 'CORRUPT', retriable: false, context, cause });
    this.name = 'CorruptionError';
  }
}

/** Fields a mysql2 server error carries; kept whole when wrapping (STYLE.md §5). */
export interface ServerErrorFields {
  code?: string;
  errno?: number;
  sqlState?: string;
  sqlMessage?: string;
}

export function isRetriable(err: unknown): boolean {
  return err instanceof TidemarkError && err.retriable;
}

/**
 * "a: caused by: b" chain of messages through `cause`, for a final one-line report. A cause whose message the
 * line already contains (wrappers often embed their cause's message) is not repeated.
 */
export function describeChain(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    if (cur instanceof Error) {
      if (cur.message !== '' && !parts.some((p) => p.includes(cur instanceof Error ? cur.message : ''))) {
        parts.push(cur.message);
      }
      cur = (cur as { cause?: unknown }).cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(': caused by: ');
}

/** Resolves after `ms`, or at once when `signal` aborts (already aborted: immediately). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
