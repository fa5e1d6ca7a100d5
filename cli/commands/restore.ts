/**
 * `tidemark restore --to-time T --into URL`: builds the protected tables as of T on an empty server, from the
 * last complete baseline before T plus the journal after it, through the normal applier (so the result carries a
 * position table too: the server can then be added as a target and follow on from T).
 *
 * URL: mysql://USER[:PASSWORD]@HOST[:PORT]; the password may instead come from $TIDEMARK_INTO_PASSWORD (better:
 * a password in a command line is visible to other users of the machine). It never appears in output or logs.
 */
import type mysql from 'mysql2/promise';
import { MysqlApplier } from '../../apply/mysql/applier.ts';
import { openSession } from '../../mysql/session.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';
import { TidemarkError } from '../../core/errors.ts';
import type { TxInfo } from '../../rollback/index/index.ts';
import { describeTx } from '../../rollback/points.ts';
import { openIndex } from '../../rollback/server.ts';
import { formatTimeUs } from '../../rollback/time.ts';
import { type JournalEntry, JournalReader, readEntries } from '../../journal/index.ts';
import { withPassword } from '../../core/secret.ts';
import type { CommandContext } from './context.ts';

export interface RestoreOptions extends CommandContext {
  readonly toTimeUs: bigint;
  readonly into: string;
  /** Password when the URL has none (from $TIDEMARK_INTO_PASSWORD). */
  readonly intoPassword?: string | undefined;
}

export interface IntoEndpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
}

/** Parses mysql://user[:password]@host[:port]; the error never repeats the URL (it may hold a password). */
export function parseIntoUrl(url: string, fallbackPassword?: string): IntoEndpoint {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TidemarkError('--into: not a URL; expected mysql://USER[:PASSWORD]@HOST[:PORT]', { code: 'USAGE' });
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new TidemarkError(`--into: scheme ${u.protocol} is not supported; expected mysql://USER@HOST[:PORT]`, {
      code: 'USAGE',
    });
  }
  if (!u.username || !u.hostname) {
    throw new TidemarkError('--into: give a user and a host: mysql://USER[:PASSWORD]@HOST[:PORT]', { code: 'USAGE' });
  }
  const ep = { host: u.hostname, port: u.port ? Number(u.port) : 3306, user: decodeURIComponent(u.username) };
  return withPassword(ep, u.password ? decodeURIComponent(u.password) : fallbackPassword);
}

/** The first unit of the last complete baseline at or before `upto` (where a restore starts). */
function baselineStart(txs: Iterable<TxInfo>): TxInfo | null {
  let end: TxInfo | null = null;
  let start: TxInfo | null = null;
  for (const t of txs) {
    if (!end) {
      if (t.phase === 'baseline-end') end = start = t;
      continue;
    }
    if (t.phase !== 'baseline') break;
    start = t;
  }
  return start;
}

async function refuseNonEmpty(conn: mysql.Connection, o: RestoreOptions, where: string): Promise<void> {
  const filter = createTableFilter(o.config.source.include, o.config.source.exclude);
  const [rows] = await conn.query<mysql.RowDataPacket[]>(
    "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type IN ('BASE TABLE', 'SYSTEM VERSIONED')",
  );
  const clash = rows
    .map((r) => `${r['s']}.${r['t']}`)
    .filter((n) => {
      const [s, ...t] = n.split('.');
      return filter.includesTable(s!, t.join('.'));
    });
  if (clash.length) {
    throw new TidemarkError(
      `--into ${where} is not empty: it already has ${clash.length} table(s) that restore would write ` +
        `(${clash.slice(0, 5).join(', ')}${clash.length > 5 ? ', …' : ''}); restore needs a server without them`,
      { code: 'USAGE' },
    );
  }
}

export async function restoreCommand(o: RestoreOptions): Promise<number> {
  const { config, log } = o;
  const into = parseIntoUrl(o.into, o.intoPassword);
  const where = `${into.host}:${into.port}`;
  const index = await openIndex(config, log, o.signal);
  try {
    const last = index.lastTxAtOrBefore(o.toTimeUs);
    if (!last)
      throw new TidemarkError(`the journal holds nothing committed at or before ${formatTimeUs(o.toTimeUs)}`, {
        code: 'REWIND_POINT',
      });
    const start = baselineStart(index.iterateTxs({ uptoSeq: last.commitSeq, order: 'desc' }));
    if (!start) {
      throw new TidemarkError(
        `the journal holds no complete baseline before ${formatTimeUs(o.toTimeUs)} (retention may have removed it): ` +
          'restore needs the baseline and every change after it',
        { code: 'REWIND_POINT' },
      );
    }
    const probe = await openSession(into, { apply: false });
    try {
      await refuseNonEmpty(probe, o, where);
    } finally {
      await probe.end().catch(() => probe.destroy());
    }
    o.stdout.write(
      `restore into ${where} up to ${describeTx(last)}, from the baseline at journal LSN ${start.firstLsn}\n`,
    );
    const target = withPassword(
      {
        ...into,
        name: 'restore',
        batch: { max_transactions: 500, max_rows: 20_000, max_wait_ms: 0 },
        no_primary_key: 'full-row' as const,
      },
      into.password,
    );
    const applier = new MysqlApplier({
      target,
      source: config.source.name,
      log,
    });
    await applier.open();
    try {
      const reader = new JournalReader({
        dir: config.journal.dir,
        fromLsn: start.firstLsn,
        follow: false,
        signal: o.signal,
      });
      async function* upTo(entries: AsyncIterable<JournalEntry>) {
        for await (const e of entries) {
          if (e.lsn > last!.commitLsn) return;
          yield e;
        }
      }
      let lastLog = 0;
      await applier.run(upTo(readEntries(reader)), {
        signal: o.signal,
        onApplied: (s) => {
          if (Date.now() - lastLog < 1000) return;
          lastLog = Date.now();
          log.info({ seq: s.seq.toString(), of: last.commitSeq.toString() }, 'restoring');
        },
      });
    } finally {
      await applier.close();
    }
    if (o.signal.aborted) throw new TidemarkError('restore stopped before it finished', { code: 'STOPPED' });
    const st = applier.state;
    if (!st || st.seq !== last.commitSeq) {
      throw new TidemarkError(`restore ended at seq ${st?.seq ?? 'none'} instead of ${last.commitSeq}`, {
        code: 'RESTORE_SHORT',
      });
    }
    o.stdout.write(`done: ${where} holds the data as of ${formatTimeUs(last.commitTimeUs)} (${last.txId})\n`);
    return 0;
  } finally {
    index.close();
  }
}
