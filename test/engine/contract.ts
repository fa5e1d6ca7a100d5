/**
 * The engine contract test: runs an engine's SourceAdapter/TargetAdapter pair through the REAL runtime
 * (node/supervisor.ts runNode, the config loader, `tidemark verify`) — capture → journal → tcp ship to a standby
 * site → apply there and at the primary's site → verify equal — with a restart in the middle of the stream, and
 * checks exactly once. Every engine passes it with its own pair (engine/README.md); the toy engine
 * (test/engine/toy/) is the first. No MySQL code is involved unless the engine under test is MySQL.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import { verifyCommand } from '../../cli/commands/verify.ts';
import { loadConfig } from '../../config/config.ts';
import { registerEngine } from '../../config/engines.ts';
import type { SourceAdapter } from '../../engine/source.ts';
import type { TargetAdapter } from '../../engine/target.ts';
import { lastCommit } from '../../journal/index.ts';
import { runNode } from '../../node/supervisor.ts';
import { makeCerts } from '../../ship/tcp/certs.ts';

type Keys = Record<string, unknown>;

/** What an engine gives the contract: its adapter pair and how to make a source, a workload and targets. */
export interface ContractEngine {
  readonly source: SourceAdapter;
  readonly target: TargetAdapter;
  /** Creates a fresh, empty source under `dir`; returns the `source:` keys beyond kind and name. */
  createSource(dir: string): Promise<Keys>;
  /**
   * Commits source transaction number `n` (1, 2, …) of the engine's workload: inserts, updates and deletes on
   * a few tables, some touching rows of earlier transactions (so a lost or doubled change shows in verify).
   */
  write(source: Keys, n: number): Promise<void>;
  /** The `targets:` entry keys beyond kind, name and site for a fresh target `name` under `dir`. */
  targetKeys(dir: string, name: string): Keys;
  /** Optional: the commit seqs applied to a target in order, when the engine can record them (exactly once). */
  appliedSeqs?(target: Keys): Promise<bigint[]>;
}

export interface ContractOptions {
  /** An empty directory for the source, targets, journals, certificates and the log (run.log). */
  readonly dir: string;
  /** The standby receiver's port (integration tests: 7790-7799). */
  readonly port: number;
  /** Ship over mutual TLS (certificates made here) instead of plaintext TCP. */
  readonly tls: boolean;
  /** Source transactions per stage (before start, running, while stopped, after restart). Default 12. */
  readonly perStage?: number;
}

export interface ContractResult {
  readonly verifyExit: number;
  readonly verify: { equal: boolean; behind: string[]; targets: { name: string; equal: boolean }[] };
  readonly journalHeadSeq: bigint;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One `tidemark run` (every site in this process) until stop() is called. */
function startNode(configFile: string, log: Logger): { stop: () => Promise<number> } {
  const ctl = new AbortController();
  const done = runNode({ config: loadConfig(configFile), log, signal: ctl.signal });
  return {
    stop: async () => {
      ctl.abort();
      return done;
    },
  };
}

function writeConfig(engine: ContractEngine, o: ContractOptions, source: Keys, certsDir: string | null): string {
  const target = (name: string, site?: string) => ({
    name,
    kind: engine.target.kind,
    ...(site ? { site } : {}),
    ...engine.targetKeys(o.dir, name),
  });
  const doc = {
    source: { kind: engine.source.kind, name: 'contract-src', ...source },
    journal: { dir: join(o.dir, 'journal') },
    site: 'primary',
    ship: { plaintext: !o.tls, heartbeat_ms: 100, ...(certsDir ? { certs_dir: certsDir } : {}) },
    standbys: [
      {
        name: 'dr',
        transport: 'tcp',
        address: `127.0.0.1:${o.port}`,
        listen: `127.0.0.1:${o.port}`,
        journal_dir: join(o.dir, 'dr-journals'),
      },
    ],
    targets: [target('near'), target('far', 'dr')],
    // The rollback index is a MySQL capability today (rollback/); the contract covers the data path.
    rollback: { index: false },
    log: { level: 'info' },
  };
  const file = join(o.dir, 'tidemark.yaml');
  writeFileSync(file, stringify(doc));
  return file;
}

/**
 * Runs the contract; throws (a vitest assertion) at the first broken promise. Stages: transactions before the
 * first start (the baseline takes them), while running, while stopped (capture resumes from the journal, apply
 * from the stored position), after the restart; then `tidemark verify --json` must say EQUAL for both targets and
 * every target must have applied each journal transaction exactly once.
 */
export async function runEngineContract(engine: ContractEngine, o: ContractOptions): Promise<ContractResult> {
  registerEngine({ source: engine.source, target: engine.target });
  mkdirSync(o.dir, { recursive: true });
  const per = o.perStage ?? 12;
  let certsDir: string | null = null;
  if (o.tls) {
    certsDir = join(o.dir, 'certs');
    await makeCerts({ dir: certsDir, ca: 'contract-ca', sites: ['primary', 'dr'], ips: ['127.0.0.1'] });
  }
  const source = await engine.createSource(join(o.dir, 'source'));
  const file = writeConfig(engine, o, source, certsDir);
  const log = pino({ level: 'info' }, pino.destination({ dest: join(o.dir, 'run.log'), sync: true }));
  let n = 0;
  const stage = async (paceMs: number) => {
    for (const end = n + per; n < end; ) {
      await engine.write(source, ++n);
      if (paceMs) await sleep(paceMs);
    }
  };
  await stage(0);
  let node = startNode(file, log);
  try {
    // Stop in the middle of the stream: the source keeps writing while capture, shipping and apply stop.
    const writing = stage(25);
    await sleep((per * 25) / 2);
    expect(await node.stop(), 'the first run stops cleanly').toBe(0);
    await writing;
    await stage(0);
    node = startNode(file, log);
    await stage(25);
    const config = loadConfig(file);
    let out = '';
    const verifyExit = await verifyCommand({
      config,
      log,
      signal: new AbortController().signal,
      stdout: { write: (t: string) => (out += t) },
      json: true,
      waitSeconds: 60,
    });
    const verify = JSON.parse(out) as ContractResult['verify'];
    expect(verify.behind, 'every target caught up with the source').toEqual([]);
    const head = await lastCommit(config.journal.dir);
    if (!head) throw new Error('the journal holds no commit');
    for (const t of config.targets) {
      const read = await engine.target.readStored(t, config.source.name);
      expect(read.stored?.state?.seq, `target ${t.name} stored the journal's last seq`).toBe(head.seq);
      if (engine.appliedSeqs) {
        const seqs = await engine.appliedSeqs(engine.targetKeys(o.dir, t.name));
        const sorted = [...new Set(seqs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        expect(seqs, `target ${t.name} applied each transaction once, in order`).toEqual(sorted);
      }
    }
    const different = verify.targets.filter((t) => !t.equal).map((t) => t.name);
    expect(different, `verify: targets DIFFERENT from the source (exit ${verifyExit}): ${out}`).toEqual([]);
    expect(verifyExit).toBe(0);
    return { verifyExit, verify, journalHeadSeq: head.seq };
  } finally {
    await node.stop();
  }
}
