/**
 * Running an external program for the takeover (fence hook, alert command, `ip`, `arping`): an argv, never a
 * shell; bounded in time and in captured output.
 *
 * The child leads its own process group (`detached`), so a timeout (or an abort) kills the whole group with
 * SIGKILL — a hook script's own children (`ssh`, `sleep`, `curl`) die with it instead of outliving the takeover.
 * A child that exits normally but leaves a background process holding its stdout open does not hold us: once
 * the child has exited, its pipes are closed after a short grace.
 *
 * Only the last `maxOutputBytes` (default 64 KiB) of stdout and of stderr are kept: the end of a failing
 * script's output is where its error is.
 */
import { spawn } from 'node:child_process';
import { TidemarkError } from '../core/errors.ts';

export interface RunOptions {
  /** Written to the child's stdin, which is then closed (absent: stdin is empty). */
  readonly stdin?: string;
  readonly timeoutMs: number;
  /** The child's whole environment (absent: this process's environment), SHLVL=1 added when it has none. */
  readonly env?: NodeJS.ProcessEnv;
  /** Aborting kills the process group, as a timeout does. */
  readonly signal?: AbortSignal;
  /** Bytes kept of each of stdout and stderr (the last ones). Default 64 KiB. */
  readonly maxOutputBytes?: number;
}

export interface RunResult {
  /** The exit code, null when the child was ended by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The timeout fired and the process group was killed. */
  readonly timedOut: boolean;
  /** The caller's signal aborted and the process group was killed. */
  readonly aborted: boolean;
  readonly durationMs: number;
}

export const DEFAULT_MAX_OUTPUT = 64 * 1024;
/** After the child exited: how long its pipes may stay open (held by a background grandchild). */
const PIPE_GRACE_MS = 500;

/** Keeps the last `limit` bytes written to it. */
export class TailBuffer {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #dropped = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size > this.#limit) {
      const first = this.#chunks[0]!;
      const excess = this.#size - this.#limit;
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#size -= first.length;
        this.#dropped += first.length;
      } else {
        this.#chunks[0] = first.subarray(excess);
        this.#size -= excess;
        this.#dropped += excess;
      }
    }
  }

  /** Bytes dropped from the front so far. */
  get dropped(): number {
    return this.#dropped;
  }

  toString(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}

/** `prog arg1 arg2`, quoted where needed: for messages only (the argv is never given to a shell). */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/** One line describing how a command ended, with the end of its stderr: for errors and logs. */
export function describeResult(argv: readonly string[], r: RunResult): string {
  const how = r.timedOut
    ? `timed out after ${r.durationMs} ms (process group killed)`
    : r.aborted
      ? 'aborted (process group killed)'
      : r.code !== null
        ? `exited with ${r.code}`
        : `killed by ${r.signal}`;
  const err = r.stderr.trim().split('\n').slice(-3).join(' | ').slice(-500);
  return `${formatArgv(argv)}: ${how}${err ? `: ${err}` : ''}`;
}

/**
 * The child's environment: `env`, with SHLVL=1 when it has no SHLVL. Node's stdio pipes are socketpairs, and
 * Debian's bash (SSH_SOURCE_BASHRC) takes a non-interactive shell whose stdin is a socket and whose SHLVL is below 2
 * for one started by sshd and sources ~/.bashrc — a `#!/bin/bash` hook run by a `tidemark run` that systemd
 * started would run root's interactive set-up (seen here: a pyenv init waiting on a stale lock until the hook timed
 * out). SHLVL=1 makes such a bash level 2, which never does.
 */
function hookEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return env['SHLVL'] === undefined ? { ...env, SHLVL: '1' } : env;
}

/**
 * Runs `argv` (no shell) and resolves with how it ended; a non-zero exit is a result, not an error. Rejects only
 * when the program could not be started (not found, not executable): a TidemarkError naming it.
 */
export function runCommand(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
  const [prog, ...args] = argv;
  if (prog === undefined) return Promise.reject(new TypeError('runCommand: empty argv'));
  const limit = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(prog, args, {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: hookEnv(opts.env ?? process.env),
      windowsHide: true,
    });
    const out = new TailBuffer(limit);
    const err = new TailBuffer(limit);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    // A child that exits without reading its stdin makes our write fail with EPIPE: not an error of ours.
    child.stdin.on('error', () => {});
    let timedOut = false;
    let aborted = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let graceTimer: NodeJS.Timeout | undefined;

    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    const onAbort = () => {
      aborted = true;
      killGroup();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const cleanup = () => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (e) => {
      cleanup();
      reject(
        new TidemarkError(`cannot run ${formatArgv(argv)}: ${e.message}`, {
          code: 'COMMAND_START',
          cause: e,
          context: { program: prog },
        }),
      );
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      clearTimeout(timer);
      // Pipes still open after the exit belong to a background grandchild: stop waiting for them shortly.
      graceTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, PIPE_GRACE_MS);
    });
    child.on('close', (code, signal) => {
      cleanup();
      const e = exit ?? { code, signal };
      resolve({
        code: e.code,
        signal: e.signal,
        stdout: out.toString(),
        stderr: err.toString(),
        timedOut,
        aborted: aborted && !timedOut,
        durationMs: Math.round(performance.now() - t0),
      });
    });
    if (opts.signal?.aborted) onAbort();
    child.stdin.end(opts.stdin ?? '');
  });
}
