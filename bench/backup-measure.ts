/**
 * Process measurement for the backup benchmark: runs a command and samples CPU time and peak RSS (VmHWM) of every
 * process of its tree every 50 ms until it exits; each stdout line is kept with the moment it arrived (a phase
 * inside a command is timed between two of its progress lines). `track` leaves the process running (a daemon such
 * as the log archiver, stopped by a signal); `measure` waits for it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { REPO_ROOT } from '../test/fixtures/mariadb.ts';
import { descendants } from '../test/fixtures/proc-tree.ts';
import { CLI, nodeFirstPath } from '../test/fixtures/topology.ts';

const CLK_TCK = 100;

export interface Measured {
  readonly s: number;
  /** CPU seconds and peak RSS (MB) per process name (comm) seen in the tree; the CLI itself is 'tidemark'. */
  readonly cpu: Record<string, number>;
  readonly rssMb: Record<string, number>;
  readonly stdout: string;
  /** stdout lines with the milliseconds since the start at which each arrived. */
  readonly lines: readonly { readonly ms: number; readonly line: string }[];
}

export interface Tracked {
  readonly child: ChildProcess;
  /** Resolves when the process exits 0 (rejects otherwise, with its stderr's tail). */
  readonly done: Promise<Measured>;
}

export function track(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Tracked {
  const t0 = performance.now();
  const child: ChildProcess = spawn(cmd, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, PATH: nodeFirstPath(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let partial = '';
  let stderr = '';
  const lines: { ms: number; line: string }[] = [];
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d;
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    const ms = performance.now() - t0;
    for (const line of parts) lines.push({ ms, line });
  });
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-8000)));
  const perPid = new Map<number, { comm: string; cpu: number; rss: number }>();
  const sample = (): void => {
    for (const pid of [child.pid as number, ...descendants(child.pid as number)]) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const rss = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
        const comm = pid === child.pid && cmd === CLI ? 'tidemark' : readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        const prev = perPid.get(pid);
        perPid.set(pid, { comm, cpu: Math.max(cpu, prev?.cpu ?? 0), rss: Math.max(rss, prev?.rss ?? 0) });
      } catch {
        // the process ended between the listing and the read
      }
    }
  };
  const timer = setInterval(sample, 50);
  const done = new Promise<Measured>((resolve, reject) => {
    child.on('close', (code) => {
      clearInterval(timer);
      const s = (performance.now() - t0) / 1000;
      if (partial !== '') lines.push({ ms: s * 1000, line: partial });
      if (code !== 0) {
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`));
        return;
      }
      const cpu: Record<string, number> = {};
      const rssMb: Record<string, number> = {};
      for (const p of perPid.values()) {
        cpu[p.comm] = (cpu[p.comm] ?? 0) + p.cpu;
        rssMb[p.comm] = Math.max(rssMb[p.comm] ?? 0, Math.round(p.rss));
      }
      resolve({ s, cpu, rssMb, stdout, lines });
    });
  });
  return { child, done };
}

export function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  return track(cmd, args, env).done;
}

export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Seconds between the first stdout line containing `from` and the first after it containing `to`. */
export function between(m: Measured, from: string, to: string): number {
  const a = m.lines.findIndex((l) => l.line.includes(from));
  const b = m.lines.findIndex((l, i) => i > a && l.line.includes(to));
  const la = m.lines[a];
  const lb = m.lines[b];
  if (a < 0 || b < 0 || la === undefined || lb === undefined) {
    throw new Error(`no "${from}" … "${to}" lines in: ${m.stdout}`);
  }
  return (lb.ms - la.ms) / 1000;
}
