/**
 * Capture CPU harness (development aid for issue #15): measures the CPU time `tidemark run --only capture` spends
 * turning a fixed binlog range (a bulk INSERT + UPDATE) into journal commits, and optionally writes a V8 CPU
 * profile. CPU time, not wall time: on a shared machine wall-clock rates are noise. Each run prints the CPU less
 * an idle start-up run's, the main thread's from the "binlog streaming started" line (sampled when the parent sees
 * it: no start-up noise), the stream's wall-clock rows/s and the peak RSS; `zongji` times raw zongji from 'ready'.
 *
 *   node bench/capture-cpu.ts setup [--bulk-rows N] [--update-rows N]   starts source 3461, loads the range
 *   node bench/capture-cpu.ts measure [--cli PATH] [--runs N] [--prof DIR]
 *   node bench/capture-cpu.ts stop
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { asMysql } from '../record/position.ts';
import { admin, stopInstance } from '../test/fixtures/mariadb.ts';
import { cpuMs } from '../test/fixtures/proc-tree.ts';
import { CLI, createTopology, exited, nodeFirstPath } from '../test/fixtures/topology.ts';
import { REPO_ROOT } from '../test/fixtures/mariadb.ts';

const SRC = 3461;
const REP = 3463;
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'bulk-rows': { type: 'string', default: '100000' },
    'update-rows': { type: 'string', default: '30000' },
    cli: { type: 'string', default: CLI },
    runs: { type: 'string', default: '1' },
    prof: { type: 'string' },
  },
});
const dir = join(REPO_ROOT, '.run', 'work', 'capcpu');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function head(journal: string) {
  const { lastCommit } = await import('../journal/index.ts');
  return lastCommit(journal);
}

async function srcGtid(): Promise<string> {
  const s = await admin(SRC);
  const [[r]] = (await s.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [Record<string, unknown>[]];
  await s.end();
  return String(r?.['g']);
}

function spawnCapture(cfg: string, prof?: string): ChildProcess {
  // The executable's own shebang flags (heap sizes), as `tidemark` runs; TIDEMARK_NODE_FLAGS adds more.
  const shebang = readFileSync(values.cli, 'utf8')
    .split('\n')[0]!
    .split(/\s+/)
    .filter((a) => a.startsWith('--'));
  const extra = (process.env['TIDEMARK_NODE_FLAGS'] ?? '').split(/\s+/).filter((a) => a !== '');
  const nodeArgs = [...shebang, ...extra, ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])];
  return spawn(process.execPath, [...nodeArgs, values.cli, 'run', '-c', cfg, '--only', 'capture'], {
    cwd: REPO_ROOT,
    env: { ...process.env, PATH: nodeFirstPath() },
    stdio: ['ignore', process.env['TIDEMARK_NODE_FLAGS'] ? 'inherit' : 'ignore', 'inherit'],
  });
}

/** Peak resident set of process `pid` (VmHWM), MB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

/** Runs capture over journal `name` until its head is the source's GTID; returns CPU ms at that moment. */
function streaming(pid: number): boolean {
  try {
    return (
      readFileSync(join(dir, 'tidemark.log'), 'utf8').includes(`"pid":${pid},`) &&
      readFileSync(join(dir, 'tidemark.log'), 'utf8')
        .split('\n')
        .some((l) => l.includes(`"pid":${pid},`) && l.includes('binlog streaming started'))
    );
  } catch {
    return false;
  }
}

async function captureUntilLevel(
  journalName: string,
  prof?: string,
  idle = false,
): Promise<{ cpu: number; main: number; wall: number; stream: number; mainStream: number; rssMb: number }> {
  const cfg = join(dir, `${journalName}.yaml`);
  writeFileSync(
    cfg,
    readFileSync(join(dir, 'tidemark.yaml'), 'utf8').replace('dir: ./journal', `dir: ./${journalName}`),
  );
  const want = await srcGtid();
  const t0 = performance.now();
  const child = spawnCapture(cfg, prof);
  let cpu = 0;
  let main = 0;
  let lastCapUs = 0n;
  let mainAtStart: number | null = null;
  let rssMb = 0;
  try {
    for (;;) {
      if (mainAtStart === null && streaming(child.pid!)) mainAtStart = cpuMs(child.pid!, true);
      const h = await head(join(dir, journalName)).catch(() => null);
      if (h && asMysql(h.position, 'head').gtid === want && (!idle || streaming(child.pid!))) {
        lastCapUs = h.captureTimeUs;
        break;
      }
      if (child.exitCode !== null) throw new Error(`capture exited ${child.exitCode}`);
      cpu = cpuMs(child.pid!);
      main = cpuMs(child.pid!, true);
      await sleep(10);
    }
    cpu = cpuMs(child.pid!);
    main = cpuMs(child.pid!, true);
    rssMb = peakRssMb(child.pid!);
  } finally {
    child.kill('SIGTERM');
    await exited(child);
  }
  const started = readFileSync(join(dir, 'tidemark.log'), 'utf8')
    .split('\n')
    .find((l) => l.includes(`"pid":${child.pid},`) && l.includes('binlog streaming started'));
  const startedMs = started ? (JSON.parse(started) as { time: number }).time : 0;
  return {
    cpu,
    main,
    wall: performance.now() - t0,
    stream: Number(lastCapUs / 1000n) - startedMs,
    mainStream: main - (mainAtStart ?? 0),
    rssMb,
  };
}

const which = positionals[0];
if (which === 'setup') {
  await createTopology({ name: 'capcpu', sourcePort: SRC, replicaPort: REP, include: ['bench.*'] });
  stopInstance('capcpurep');
  const src = await admin(SRC);
  await src.query('CREATE DATABASE bench');
  await src.query('CREATE DATABASE IF NOT EXISTS seq');
  await src.query(
    'CREATE TABLE bench.bulk (id INT NOT NULL PRIMARY KEY, a VARCHAR(64) NOT NULL, b DECIMAL(12,2) NOT NULL, c DATETIME(6) NOT NULL, d BIGINT NULL)',
  );
  await captureUntilLevel('journal');
  cpSync(join(dir, 'journal'), join(dir, 'journal-before'), { recursive: true });
  const [[ms]] = (await src.query('SHOW MASTER STATUS')) as unknown as [Record<string, unknown>[]];
  writeFileSync(join(dir, 'from.json'), JSON.stringify({ file: String(ms?.['File']), pos: Number(ms?.['Position']) }));
  await src.query(
    `INSERT INTO bench.bulk SELECT seq, CONCAT('row-', seq, '-', REPEAT('x', seq % 20)), seq / 7, TIMESTAMPADD(MICROSECOND, seq * 1234, '2024-01-01'), seq * 1000003 FROM seq.seq_1_to_${values['bulk-rows']}`,
  );
  await src.query(`UPDATE bench.bulk SET b = b + 1, a = CONCAT(a, 'u') WHERE id <= ${values['update-rows']}`);
  await src.end();
  writeFileSync(join(dir, 'rows'), String(Number(values['bulk-rows']) + Number(values['update-rows'])));
  process.stderr.write('setup done\n');
} else if (which === 'measure') {
  const rows = Number(readFileSync(join(dir, 'rows'), 'utf8'));
  for (let i = 0; i < Number(values.runs); i++) {
    rmSync(join(dir, 'journal-m'), { recursive: true, force: true });
    cpSync(join(dir, 'journal-before'), join(dir, 'journal-m'), { recursive: true });
    const r = await captureUntilLevel('journal-m', values.prof);
    // The same process start over the now-level journal: start-up cost only, subtracted.
    const idle = await captureUntilLevel('journal-m', undefined, true);
    process.stdout.write(`start-up cpu ${(idle.cpu / 1000).toFixed(2)} s; `);
    r.cpu -= idle.cpu;
    r.main -= idle.main;
    process.stdout.write(
      `${values.cli}: cpu ${(r.cpu / 1000).toFixed(2)} s, ${((r.cpu / 1000) * (100000 / rows)).toFixed(2)} cpu-s/100k rows (main thread ${((r.main / 1000) * (100000 / rows)).toFixed(2)}; from the stream's start ${((r.mainStream / 1000) * (100000 / rows)).toFixed(2)}), wall ${(r.wall / 1000).toFixed(2)} s, stream wall ${(r.stream / 1000).toFixed(2)} s (${Math.round(rows / (r.stream / 1000))} rows/s), peak RSS ${r.rssMb} MB\n`,
    );
  }
} else if (which === 'zongji') {
  // Raw zongji decode of the same range (as bench/spine.ts's peer), CPU time of this process around it.
  const { default: ZongJi } = await import('@vlasky/zongji');
  const { ROOT_PASSWORD } = await import('../test/fixtures/mariadb.ts');
  const from = JSON.parse(readFileSync(join(dir, 'from.json'), 'utf8')) as { file: string; pos: number };
  const want = await srcGtid();
  void want;
  for (let i = 0; i < Number(values.runs); i++) {
    const zj = new ZongJi({ host: '127.0.0.1', port: SRC, user: 'root', password: ROOT_PASSWORD, dateStrings: true });
    let rows = 0;
    let c0 = process.cpuUsage();
    let t0 = performance.now();
    const total = Number(readFileSync(join(dir, 'rows'), 'utf8'));
    let m0 = process.threadCpuUsage();
    // Timed from 'ready' (the dump about to start), as capture's stream wall is from the line that event logs.
    zj.on('ready', () => {
      t0 = performance.now();
      m0 = process.threadCpuUsage();
      c0 = process.cpuUsage();
    });
    await new Promise<void>((resolve, reject) => {
      zj.on('error', reject);
      zj.on('binlog', (e: { getEventName(): string; rows?: unknown[] }) => {
        if (e.rows) rows += e.rows.length;
        if (e.getEventName() === 'xid' && rows >= total) resolve();
      });
      zj.start({
        filename: from.file,
        position: from.pos,
        serverId: 9912,
        includeEvents: ['tablemap', 'writerows', 'updaterows', 'deleterows', 'xid', 'rotate'],
      });
    });
    const c = process.cpuUsage(c0);
    const m = process.threadCpuUsage(m0);
    const cpu = (c.user + c.system) / 1e6;
    zj.stop();
    process.stdout.write(
      `zongji: cpu ${cpu.toFixed(2)} s, ${(cpu * (100000 / total)).toFixed(2)} cpu-s/100k rows (main thread ${(((m.user + m.system) / 1e6) * (100000 / total)).toFixed(2)}), wall ${((performance.now() - t0) / 1000).toFixed(2)} s\n`,
    );
  }
  process.exit(0);
} else if (which === 'stop') {
  stopInstance('capcpusrc');
  stopInstance('capcpurep');
}
