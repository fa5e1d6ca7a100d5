import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../core/errors.ts';
import { describeResult, formatArgv, runCommand, TailBuffer } from './command.ts';

/** Alive = exists and is not a zombie (a killed process whose parent has not reaped it yet). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

describe('runCommand', () => {
  it('passes stdin, captures stdout and stderr, reports the exit code', async () => {
    const r = await runCommand(['bash', '-c', 'tr a-z A-Z; echo oops >&2; exit 3'], {
      stdin: 'hello\n',
      timeoutMs: 5000,
    });
    expect(r).toMatchObject({ code: 3, signal: null, stdout: 'HELLO\n', stderr: 'oops\n', timedOut: false });
    expect(describeResult(['bash', '-c', 'x y'], r)).toBe("bash -c 'x y': exited with 3: oops");
  });

  it('runs without a shell: metacharacters are plain arguments', async () => {
    const r = await runCommand(['echo', '$HOME; rm -rf /', '`id`'], { timeoutMs: 5000 });
    expect(r.stdout).toBe('$HOME; rm -rf / `id`\n');
  });

  it('kills the whole process group on timeout, grandchildren included', async () => {
    const t0 = Date.now();
    const r = await runCommand(['bash', '-c', 'sleep 30 & echo $!; wait'], { timeoutMs: 300 });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGKILL');
    const grandchild = Number(r.stdout.trim());
    expect(grandchild).toBeGreaterThan(1);
    expect(await until(() => !alive(grandchild), 2000)).toBe(true);
    expect(describeResult(['hook'], r)).toMatch(/^hook: timed out after \d+ ms \(process group killed\)$/);
  });

  it('an abort kills the group too', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await runCommand(['sleep', '30'], { timeoutMs: 10_000, signal: ac.signal });
    expect(r).toMatchObject({ aborted: true, timedOut: false, signal: 'SIGKILL' });
  });

  it('does not wait for a background process that keeps stdout open after the child exited', async () => {
    const t0 = Date.now();
    const r = await runCommand(['bash', '-c', 'sleep 20 & echo $!'], { timeoutMs: 10_000 });
    const pid = Number(r.stdout.trim());
    try {
      expect(r.code).toBe(0);
      expect(r.timedOut).toBe(false);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('keeps only the last bytes of a large output', async () => {
    const r = await runCommand(['bash', '-c', 'head -c 300000 /dev/zero | tr "\\0" a; printf END'], {
      timeoutMs: 10_000,
      maxOutputBytes: 1000,
    });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(1000);
    expect(r.stdout.endsWith('aaaEND')).toBe(true);
  });

  it('a child that does not read its stdin is not an error', async () => {
    const r = await runCommand(['true'], { stdin: 'x'.repeat(1 << 20), timeoutMs: 5000 });
    expect(r.code).toBe(0);
  });

  it('rejects, naming the program, when it cannot be started', async () => {
    const err = await runCommand(['/nonexistent/hook', 'a'], { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('COMMAND_START');
    expect((err as Error).message).toMatch(/^cannot run \/nonexistent\/hook a: .*ENOENT/);
  });

  it('uses the given environment only (and SHLVL=1 when it has none)', async () => {
    const r = await runCommand(['/usr/bin/env'], { timeoutMs: 5000, env: { ONLY: 'this' } });
    expect(r.stdout).toBe('ONLY=this\nSHLVL=1\n');
    const given = await runCommand(['/usr/bin/env'], { timeoutMs: 5000, env: { ONLY: 'this', SHLVL: '3' } });
    expect(given.stdout).toBe('ONLY=this\nSHLVL=3\n');
  });

  it("a bash hook does not source the user's ~/.bashrc (stdin is a socket: bash would think sshd started it)", async () => {
    const home = mkdtempSync(join(tmpdir(), 'tm-hook-home-'));
    try {
      writeFileSync(join(home, '.bashrc'), 'echo BASHRC-SOURCED\n');
      const r = await runCommand(['bash', '-c', 'echo hook'], {
        timeoutMs: 5000,
        env: { HOME: home, PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
        stdin: '{}',
      });
      expect(r.stdout).toBe('hook\n');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('TailBuffer', () => {
  it('keeps the last bytes across chunk boundaries', () => {
    const b = new TailBuffer(5);
    for (const s of ['abc', 'defg', 'h', 'ijklmnop', 'q']) b.push(Buffer.from(s));
    expect(b.toString()).toBe('mnopq');
    expect(b.dropped).toBe(12);
  });
});

describe('formatArgv', () => {
  it('quotes what a shell would split', () => {
    expect(formatArgv(['ip', 'addr', 'add', '10.0.0.5/24', 'dev', 'eth0'])).toBe('ip addr add 10.0.0.5/24 dev eth0');
    expect(formatArgv(['sh', '-c', "it's"])).toBe("sh -c 'it'\\''s'");
  });
});
