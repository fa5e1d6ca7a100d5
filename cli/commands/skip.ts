/**
 * `tidemark skip --target T --seq N`: an operator's way past a journal entry a target cannot apply (a duplicate
 * key, a missing row, a DDL the replica refuses). It moves the target's stored position past exactly the one
 * source transaction that holds seq N — only when that transaction is the next one the target has to apply,
 * refusing otherwise — and records an audit line. The replica then lacks that transaction's changes (fix them by
 * hand if they matter; `tidemark verify` shows the difference).
 *
 * `tidemark skip --target T --to-baseline`: moves the target's stored position to just before the newest
 * baseline in the journal, in either direction (the recovery after the journal was deleted or replaced: the
 * target is re-copied from the new journal's baseline).
 *
 * Coordination with a running `tidemark run`: the change is one replica transaction that locks the position row
 * (SELECT … FOR UPDATE, the row every apply group claims first), so it never interleaves with an apply group;
 * a running applier sees its stored position move, re-reads it and continues from there (a failed target is
 * retried at once). No need to stop anything.
 *
 * Audit: one JSON line per skip appended (and fsynced) to `<journal>/audit.log` — time, operator (OS user,
 * SUDO_USER), host, pid, target, the position before and after, the skipped transaction (seq range, LSNs, source
 * position, commit time, tables and row counts) and the reason given — and the same as a warning in the tidemark
 * log.
 */
import { open } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import {
  type AppliedState,
  parsePositionRow,
  selectPositionSql,
  upsertPositionSql,
} from '../../apply/mysql/position-table.ts';
import { openSession } from '../../mysql/session.ts';
import { TidemarkError } from '../../core/errors.ts';
import { formatPosition, positionToJson } from '../../record/position.ts';
import { journalDirOf } from '../../journal/index.ts';
import { baselineStarts, type UnitInfo, unitAt } from '../../node/journal-units.ts';
import type { CommandContext } from './context.ts';

export const AUDIT_FILE = 'audit.log';

export interface SkipOptions extends CommandContext {
  /** Target name (checked to exist by cli/main.ts). */
  readonly target: string;
  /** A seq of the transaction to skip (any seq in it: the failing entry's, as the apply error names it). */
  readonly seq?: bigint | undefined;
  /** Instead of --seq: restart the target from the newest baseline in the journal. */
  readonly toBaseline?: boolean | undefined;
  /** Why (recorded in the audit line). */
  readonly reason?: string | undefined;
}

function refuse(message: string): TidemarkError {
  return new TidemarkError(message, { code: 'SKIP_REFUSED' });
}

const iso = (us: bigint | null) => (us === null ? null : new Date(Number(us / 1000n)).toISOString());

function describeUnit(u: UnitInfo): string {
  const changes = Object.entries(u.changes)
    .map(
      ([t, ops]) =>
        `${t} ${Object.entries(ops)
          .map(([op, n]) => `${op} ${n}`)
          .join(', ')}`,
    )
    .join('; ');
  return (
    `transaction seq ${u.firstSeq}–${u.commit.seq} (journal LSN ${u.firstLsn}–${u.commitLsn}, source ` +
    `${formatPosition(u.commit.position)}, committed ${iso(u.commit.commitTimeUs)}` +
    `${changes ? `; ${changes}` : ''})`
  );
}

interface Plan {
  readonly to: AppliedState;
  readonly what: string;
  readonly audit: Record<string, unknown>;
}

/** The transaction to skip: the next one after the stored position, which must hold `seq`. */
async function planSeq(dir: string, target: string, st: AppliedState | null, seq: bigint): Promise<Plan> {
  const stored = st ? `stored seq ${st.seq}, journal LSN ${st.lsn}` : 'nothing applied yet';
  if (st && seq <= st.seq) throw refuse(`target ${target} is already past seq ${seq} (${stored}): nothing skipped`);
  const u = await unitAt(dir, st ? st.lsn + 1n : 1n);
  if (!u) throw refuse(`target ${target} (${stored}): the journal ${dir} holds no complete transaction after it`);
  if (seq < u.firstSeq || seq > u.commit.seq) {
    throw refuse(
      `target ${target} (${stored}) is not right before seq ${seq}: the next transaction it applies is ` +
        `${describeUnit(u)}. skip only skips the transaction a target stopped at (the apply error names its seq)`,
    );
  }
  if (u.commit.phase !== 'stream') {
    throw refuse(
      `seq ${seq} is part of a baseline (phase ${u.commit.phase}): skipping part of a baseline would leave tables ` +
        'half-copied; use `tidemark run --rebaseline` instead',
    );
  }
  const to: AppliedState = {
    seq: u.commit.seq,
    lsn: u.commitLsn,
    position: u.commit.position,
    commitTimeUs: u.commit.commitTimeUs,
    phase: u.commit.phase,
  };
  const skipped = {
    first_seq: `${u.firstSeq}`,
    commit_seq: `${u.commit.seq}`,
    first_lsn: `${u.firstLsn}`,
    commit_lsn: `${u.commitLsn}`,
    position: positionToJson(u.commit.position),
    commit_time: iso(u.commit.commitTimeUs),
    changes: u.changes,
  };
  return { to, what: `skipped ${describeUnit(u)}`, audit: { action: 'skip', seq: `${seq}`, skipped } };
}

/** Just before the newest baseline in the journal. */
async function planBaseline(dir: string, target: string): Promise<Plan> {
  const starts = await baselineStarts(dir, null, { first: false });
  const b = starts[starts.length - 1];
  if (!b) {
    throw refuse(
      `the journal ${dir} holds no baseline for target ${target} to restart from: let capture take one ` +
        '(`tidemark run --rebaseline`, or by itself into an empty journal), then run this again',
    );
  }
  const to: AppliedState = { seq: b.seq - 1n, lsn: b.lsn - 1n, position: null, commitTimeUs: null, phase: null };
  return {
    to,
    what: `moved to the baseline starting at journal LSN ${b.lsn} (seq ${b.seq}): it is applied from there`,
    audit: { action: 'skip-to-baseline', baseline: { lsn: `${b.lsn}`, seq: `${b.seq}` } },
  };
}

async function appendAudit(dir: string, line: Record<string, unknown>): Promise<string> {
  const file = join(dir, AUDIT_FILE);
  const fh = await open(file, 'a', 0o640);
  try {
    await fh.write(`${JSON.stringify(line)}\n`);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return file;
}

export async function skipCommand(o: SkipOptions): Promise<number> {
  const { config } = o;
  const t = config.targets.find((x) => x.name === o.target);
  if (!t) throw new TidemarkError(`no target ${o.target}`, { code: 'USAGE' });
  const dir = journalDirOf(config, t);
  const source = config.source.name;
  const conn = await openSession(t, { apply: true });
  let before: AppliedState | null;
  let plan: Plan;
  try {
    // A running apply group holds the row for at most a few seconds; longer means something else holds it.
    await conn.query('SET SESSION innodb_lock_wait_timeout = 15');
    await conn.query('START TRANSACTION');
    const [rows] = await conn.query<mysql.RowDataPacket[]>(selectPositionSql(source, true)).catch((err) => {
      if ((err as { errno?: number }).errno === 1146) {
        throw refuse(`target ${t.name} has no position table: nothing was applied to it yet`);
      }
      throw err;
    });
    const stored = parsePositionRow(rows[0]);
    if (stored.hold !== null) {
      throw refuse(
        `target ${t.name} is held (${stored.hold}): release it first (\`tidemark forward --target ${t.name} --to-head\`)`,
      );
    }
    before = stored.state;
    plan = o.toBaseline ? await planBaseline(dir, t.name) : await planSeq(dir, t.name, before, o.seq ?? -1n);
    await conn.query(upsertPositionSql(source, plan.to));
    await conn.query('COMMIT');
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => {});
    if ((err as { errno?: number }).errno === 1205) {
      throw refuse(
        `target ${t.name}: its position row stayed locked for 15 s (an apply group or a rewind is running on it): ` +
          'it is not stopped at a transaction now; try again',
      );
    }
    throw err;
  } finally {
    await conn.end().catch(() => {});
  }
  const user = userInfo().username;
  const sudo = process.env['SUDO_USER'];
  const line = {
    time: new Date().toISOString(),
    ...plan.audit,
    target: t.name,
    source,
    user: sudo ? `${sudo} (as ${user})` : user,
    host: hostname(),
    pid: process.pid,
    reason: o.reason ?? null,
    before: before ? { seq: `${before.seq}`, lsn: `${before.lsn}` } : null,
    after: { seq: `${plan.to.seq}`, lsn: `${plan.to.lsn}` },
  };
  o.log.warn({ audit: line }, `tidemark skip on target ${t.name}: ${plan.what}`);
  let file: string;
  try {
    file = await appendAudit(dir, line);
  } catch (err) {
    throw new TidemarkError(
      `target ${t.name}: ${plan.what}, but the audit line could not be written to ${join(dir, AUDIT_FILE)} ` +
        '(it is in the tidemark log)',
      { code: 'AUDIT', cause: err },
    );
  }
  o.stdout.write(`target ${t.name}: ${plan.what}\n  audit: ${file}\n`);
  return 0;
}
