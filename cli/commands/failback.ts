/**
 * `tidemark failback -c FILE [--yes] [--quarantine FILE] [--mirror-dir DIR]`: at the old primary's site, with the
 * config in which it was the primary, after a standby took over. Makes the old primary a standby of the new one
 * without a full copy (failover/README.md, "Failback"):
 *
 *   1. lineage   read where the new primary's journal branched from this site's (tidemark.failover_lineage on the
 *                promoted server, written by its site when it promoted its journal: node/promoted.ts)
 *   2. fence     the old primary stays read-only (set again if it is writable)
 *   3. catch up  capture the old primary's binlog to its end into its journal, so that the journal holds every
 *                transaction it committed (also those its capture never saw before it died)
 *   4. errant    the journal's units after the branch point: committed here, never on the new primary. Shown,
 *                and written to a quarantine file (SQL with the row images; failover/quarantine.ts)
 *   5. rewind    with --yes: undone on the old primary by the rewind engine (source.admin, which needs READ_ONLY
 *                ADMIN as the server is read-only), newest first, every statement guarded
 *   6. demote    the journal is cut back to the branch point and becomes a mirror of the new primary's journal;
 *                the old primary's position row says it holds the branch point. Optionally moved to --mirror-dir.
 *
 * Then `tidemark run --site <this site>` with the config in which the new primary's site is the primary receives
 * and applies from the branch point on. Without --yes, steps 1-4 run and nothing is changed (but the quarantine
 * file is written). Safe to run again after a failure: every step checks what is already done.
 *
 * A PostgreSQL old primary (source.kind postgres) goes through the same steps through the engine seams: the lineage
 * row, the fence and the read-only check (failover/db-steps.ts), the catch-up from its capture slot up to a marker
 * (node/failback-capture.ts), a psql quarantine file (failover/quarantine-pg.ts), the rewind by the rollback
 * PostgreSQL dialect through source.admin, the branch position in tidemark.applied (granted to source.admin, which
 * applies there afterwards), and its capture slot dropped at the end (failover/pg-failback.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { preparePosition } from '../../apply/mysql/position-store.ts';
import { upsertPositionSql } from '../../apply/mysql/position-table.ts';
import type { AppliedState } from '../../engine/target.ts';
import { type MysqlEndpoint, openSession } from '../../mysql/session.ts';
import { failoverDbSteps } from '../../failover/db-steps.ts';
import type { Lineage } from '../../failover/lineage.ts';
import { dropPgSlot, setPgBranchPosition } from '../../failover/pg-failback.ts';
import { formatErrantSummary, writeQuarantine } from '../../failover/quarantine.ts';
import { pgQuarantineText } from '../../failover/quarantine-pg.ts';
import { describeChain, TidemarkError } from '../../core/errors.ts';
import type { PgEndpoint } from '../../postgres/session.ts';
import { removeIndexFiles } from '../../rollback/index/index.ts';
import { formatPosition } from '../../record/position.ts';
import { commitAtLsn, demoteToMirror, readIdentity } from '../../journal/index.ts';
import { asFailoverAccount, failoverOf, primaryDbSteps, promotableTarget } from '../../node/failover-spec.ts';
import { catchUpCapture } from '../../node/failback-capture.ts';
import type { CommandContext } from './context.ts';
import { rewindCommand } from './rewind.ts';

export interface FailbackOptions extends CommandContext {
  readonly yes: boolean;
  /** Where the quarantine file goes; default `<journal.dir>/../failback-<source>-<time>.sql`. */
  readonly quarantine?: string | undefined;
  /** Move the demoted journal here (where the new topology's config expects this site's mirror). */
  readonly mirrorDir?: string | undefined;
}

/** The newest lineage row among the promotable standbys' servers. */
async function findLineage(o: FailbackOptions): Promise<Lineage> {
  const { config } = o;
  const f = failoverOf(config);
  const found: Lineage[] = [];
  const errors: string[] = [];
  for (const s of config.standbys) {
    const t = promotableTarget(config, s.name);
    if (!t) continue;
    try {
      const steps = failoverDbSteps((config.source as { kind?: string }).kind, (t as { kind?: string }).kind);
      const l = await steps.readLineage(asFailoverAccount(f, t), config.source.name);
      if (l) found.push(l);
    } catch (err) {
      errors.push(`${s.name} (${t.host}:${t.port}): ${describeChain(err)}`);
    }
  }
  found.sort((a, b) => (a.promotedAt < b.promotedAt ? 1 : -1));
  const l = found[0];
  if (l) return l;
  throw new TidemarkError(
    `no standby of ${config.source.name} was promoted: no ${'`tidemark`.`failover_lineage`'} row on the standbys' ` +
      `servers${errors.length ? ` (not reached: ${errors.join('; ')})` : ''}. A promoted standby writes it when ` +
      'its tidemark run takes the primary role',
    { code: 'FAILBACK_NO_PROMOTION', retriable: errors.length > 0 },
  );
}

/** The old primary's position row: it holds the branch point (the receiver and applier go on from there). */
async function setBranchPosition(ep: MysqlEndpoint, source: string, state: Parameters<typeof upsertPositionSql>[1]) {
  const conn = await openSession(ep, { apply: false });
  try {
    await preparePosition(async (sql) => (await conn.query(sql))[0], source);
    await conn.query(upsertPositionSql(source, state));
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** A PostgreSQL old primary's source.admin role: it rewinds, and applies there in the new topology. */
function pgAdminUser(o: FailbackOptions, needed: boolean): string | null {
  const admin = (o.config.source as { admin?: { user: string } }).admin;
  if (!admin && needed) {
    throw new TidemarkError(
      `${o.config.file} has no source.admin account: failback of a PostgreSQL old primary rewinds it through it; ` +
        'add source.admin (the role that applies to this server in the new topology, e.g. tidemark_apply) and run ' +
        'again',
      { code: 'USAGE' },
    );
  }
  return admin?.user ?? null;
}

/** PostgreSQL: the old primary's capture slot, dropped once its journal is a mirror (failover account). */
async function dropOldSlot(o: FailbackOptions, out: (line: string) => void): Promise<void> {
  const slot = (o.config.source as unknown as { slot: string }).slot;
  const ep = asFailoverAccount(failoverOf(o.config), o.config.source) as unknown as PgEndpoint;
  out(await dropPgSlot(ep, slot, o.signal));
}

export async function failbackCommand(o: FailbackOptions): Promise<number> {
  const { config, log, stdout } = o;
  const f = failoverOf(config);
  const dir = config.journal.dir;
  const out = (line: string) => stdout.write(`${line}\n`);
  const primary = asFailoverAccount(f, config.source);
  const where = `${config.source.host}:${config.source.port}`;
  const steps = primaryDbSteps(config);
  const pg = steps.engine === 'postgres';

  const lineage = await findLineage(o);
  out(
    `${lineage.site} is the primary of ${config.source.name} since ${lineage.promotedAt}: its journal ` +
      `${lineage.journalId} continues ${lineage.branchOf} after LSN ${lineage.branchLsn} (seq ${lineage.branchSeq}), ` +
      `from ${formatPosition(lineage.position)}`,
  );
  for (const d of o.mirrorDir === undefined ? [dir] : [resolve(o.mirrorDir), dir]) {
    if ((await readIdentity(d))?.mirror?.of === lineage.journalId) {
      out(`${d} is already a mirror of ${lineage.journalId}: failback was done; start tidemark run for this site`);
      // A run that stopped after the demotion: the slot may still be there (best effort: the failback is done).
      if (pg) {
        await dropOldSlot(o, out).catch((err: unknown) =>
          out(`the old primary's capture slot was not dropped (${describeChain(err)}): drop it by hand`),
        );
      }
      return 0;
    }
  }
  const ident = await readIdentity(dir);
  if (!ident || ident.id !== lineage.branchOf) {
    throw new TidemarkError(
      `${dir} is ${ident ? `journal ${ident.id}` : 'no journal'}, not ${lineage.branchOf}, the one ${lineage.site} ` +
        'continued: this is not the old primary of that promotion (wrong config file or journal.dir? an earlier ' +
        'failback moved it with --mirror-dir: give the same --mirror-dir)',
      { code: 'FAILBACK_LINEAGE' },
    );
  }

  const writable = await steps.isWritable(primary, f.fence.timeout_ms);
  if (writable === null)
    throw new TidemarkError(`the old primary ${where} is not reachable`, { code: 'CONNECT', retriable: true });
  if (writable) {
    const r = await steps.fence(primary, { killSessions: true, timeoutMs: f.fence.timeout_ms, log });
    if (!r.confirmed)
      throw new TidemarkError(`could not fence the old primary ${where}: ${r.detail}`, { code: 'FENCE' });
    out(`the old primary ${where} was writable: fenced (${r.detail})`);
  } else out(`the old primary ${where} is read-only`);

  out(
    pg
      ? "capturing what the old primary committed into its journal (its capture slot's tail)…"
      : 'capturing what the old primary committed into its journal (up to its binlog end)…',
  );
  await catchUpCapture(config, log, o.signal);
  const branch = await commitAtLsn(dir, lineage.branchLsn);
  if (!branch || branch.seq !== lineage.branchSeq || (lineage.branchTx !== '' && branch.txId !== lineage.branchTx)) {
    throw new TidemarkError(
      `the journals differ at the branch point LSN ${lineage.branchLsn}: ${lineage.site} has seq ` +
        `${lineage.branchSeq} (${lineage.branchTx}) there, ${dir} has ${branch ? `seq ${branch.seq} (${branch.txId})` : 'no commit'}`,
      { code: 'FAILBACK_LINEAGE' },
    );
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = resolve(o.quarantine ?? join(dirname(dir), `failback-${config.source.name}-${stamp}.sql`));
  const q = await writeQuarantine({
    journalDir: dir,
    afterLsn: lineage.branchLsn,
    file,
    header: [
      `tidemark failback of ${config.source.name} at ${where}: transactions committed on the old primary that`,
      `never reached ${lineage.site} (the primary since ${lineage.promotedAt}). Review them; to keep any, apply`,
      `them to the new primary by hand.`,
    ],
    signal: o.signal,
    ...(pg ? { text: pgQuarantineText } : {}),
  });
  for (const line of formatErrantSummary(q)) out(line);
  out(`quarantine file: ${file}`);
  const pgAdmin = pg ? pgAdminUser(o, o.yes && q.transactions > 0) : null; // checked before anything changes
  if (!o.yes) {
    out(
      `nothing changed: run again with --yes to rewind ${q.transactions} errant transaction(s) on ${where} ` +
        `and make it a standby of ${lineage.site}`,
    );
    return 0;
  }

  if (q.transactions > 0) {
    out(`rewinding the old primary to seq ${lineage.branchSeq} (what ${lineage.site} holds)…`);
    const code = await rewindCommand({
      ...o,
      target: config.source.name,
      dryRun: false,
      yes: true,
      sourceCaptured: true,
      spec: { kind: 'seq', keep: lineage.branchSeq },
    });
    if (code !== 0) return code;
  }
  await demoteToMirror(dir, {
    of: lineage.journalId,
    branch: { of: lineage.branchOf, atLsn: lineage.branchLsn, epoch: lineage.branchEpoch },
    log,
  });
  // The rollback index described the old primary's journal, errant tail included: derived data, rebuilt on use.
  removeIndexFiles(dir);
  const state: AppliedState = {
    seq: branch.seq,
    lsn: lineage.branchLsn,
    position: branch.position,
    commitTimeUs: branch.commitTimeUs,
    phase: branch.phase,
  };
  if (pg) {
    await setPgBranchPosition(primary as unknown as PgEndpoint, config.source.name, state, pgAdmin);
    if (pgAdmin !== null) out(`tidemark.applied granted to ${pgAdmin} (source.admin), which applies here from now on`);
    await dropOldSlot(o, out);
  } else await setBranchPosition(primary, config.source.name, state);
  let mirror = dir;
  if (o.mirrorDir !== undefined) {
    mirror = resolve(o.mirrorDir);
    if (existsSync(mirror)) {
      throw new TidemarkError(`--mirror-dir ${mirror} exists already: the journal stays at ${dir}`, { code: 'USAGE' });
    }
    await mkdir(dirname(mirror), { recursive: true });
    await rename(dir, mirror);
  }
  out(
    `done: ${where} is read-only and holds what ${lineage.site} held at LSN ${lineage.branchLsn}; ${mirror} is a ` +
      `mirror of ${lineage.site}'s journal. Start tidemark run --site <this site> with the config in which ` +
      `${lineage.site} is the primary (this site's standby mirror: ${mirror})`,
  );
  return 0;
}
