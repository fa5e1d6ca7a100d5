/**
 * Child processes of the rewind benchmark, timed from the outside the same way for both contenders: wall time
 * from spawn to exit, and peak RSS and CPU time (user + system) from `/usr/bin/time -f '%M %U %S'` (GNU time; -1
 * where it is missing).
 *
 *   tidemark: the CLI file itself (its shebang's Node flags, this Node first on PATH), as users run it
 *   peer:     `mariadb-binlog --flashback --start-position … --stop-position … FILE | mariadb …`, as a DBA would
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_PASSWORD } from '../test/fixtures/mariadb.ts';
import { CLI, nodeFirstPath } from '../test/fixtures/topology.ts';

const GNU_TIME = '/usr/bin/time';

export interface Timed {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall seconds, spawn to exit. */
  s: number;
  /** Peak RSS (MB) of each timed process, in order; -1 when unknown. */
  rssMb: number[];
  /** CPU seconds (user + system) of each timed process, in order; -1 when unknown. */
  cpuS: number[];
}

/** GNU time's '%M %U %S' line (peak RSS in KiB, user and system seconds); -1 for what is not there. */
function timeStats(file: string): { rssMb: number; cpuS: number } {
  let line: string | undefined;
  try {
    // GNU time writes "Command exited with non-zero status N" before the figures when the command failed.
    line = readFileSync(file, 'utf8').trim().split('\n').pop();
  } catch {
    return { rssMb: -1, cpuS: -1 };
  }
  const [kb, user, sys] = (line ?? '').split(' ').map(Number);
  return {
    rssMb: kb !== undefined && Number.isFinite(kb) ? Math.round(kb / 1024) : -1,
    cpuS: user !== undefined && sys !== undefined && Number.isFinite(user + sys) ? user + sys : -1,
  };
}

/** Runs a shell command line; `timed` are prefixes naming the processes GNU time measures ("$T0 cmd | $T1 cmd"). */
function runTimed(script: (time: (i: number) => string) => string, timeoutMs: number): Promise<Timed> {
  const tmp = mkdtempSync(join(tmpdir(), 'tidemark-bench-time-'));
  const haveTime = existsSync(GNU_TIME);
  const statFile = (i: number) => join(tmp, `time${i}`);
  let count = 0;
  const line = script((i) => {
    count = Math.max(count, i + 1);
    return haveTime ? `${GNU_TIME} -f '%M %U %S' -o ${statFile(i)}` : '';
  });
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const child = spawn('bash', ['-c', `set -o pipefail; ${line}`], {
      env: { ...process.env, PATH: nodeFirstPath() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', rej);
    child.on('close', (code) => {
      const s = (performance.now() - t0) / 1000;
      clearTimeout(timer);
      const stats = Array.from({ length: count }, (_, i) => timeStats(statFile(i)));
      rmSync(tmp, { recursive: true, force: true });
      res({ code, stdout, stderr, s, rssMb: stats.map((t) => t.rssMb), cpuS: stats.map((t) => t.cpuS) });
    });
  });
}

const sh = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** `tidemark ARGS…` to completion. */
export function timedCli(args: string[], timeoutMs = 30 * 60_000): Promise<Timed> {
  return runTimed((time) => `${time(0)} ${[CLI, ...args].map(sh).join(' ')}`, timeoutMs);
}

export interface BinlogRange {
  /** Full path of the binlog file holding the transaction. */
  file: string;
  start: number;
  /** null: to the end of the file (the server rotated right after the transaction). */
  stop: number | null;
}

/** The peer: the transaction's flashback (inverse row events, newest first) piped into the server's client. */
export function flashback(r: BinlogRange, port: number, timeoutMs = 30 * 60_000): Promise<Timed> {
  const binlog = [
    'mariadb-binlog',
    '--no-defaults',
    '--flashback',
    `--start-position=${r.start}`,
    ...(r.stop === null ? [] : [`--stop-position=${r.stop}`]),
    r.file,
  ];
  const client = ['mariadb', '--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', 'root'];
  // The password through the environment, not argv (and not a warning on stderr).
  return runTimed(
    (time) =>
      `${time(0)} ${binlog.map(sh).join(' ')} | MYSQL_PWD=${sh(ROOT_PASSWORD)} ${time(1)} ${client.map(sh).join(' ')}`,
    timeoutMs,
  );
}
