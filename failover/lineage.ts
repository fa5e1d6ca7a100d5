/**
 * The lineage row: where a promoted standby's journal branched from the old primary's, kept ON the new primary's
 * database (`tidemark.failover_lineage`, one row per source) so that the old primary's site can read it when it
 * comes back (`tidemark failback`), whatever host it runs on. Written through the failover account (it has
 * CREATE, INSERT, UPDATE on the `tidemark` schema, which is never captured: no DELETE, so no REPLACE).
 *
 *   journal_id    the new primary's journal (the promoted mirror, with a new id)
 *   branch_of     the journal it continues: the old primary's
 *   branch_lsn    the last LSN both share: the new primary applied everything up to it, nothing after
 *   branch_seq    the record seq of that LSN's commit (what the old primary is rewound to)
 *   branch_tx     that commit's transaction id (a check that the old primary's journal is the same there)
 *   branch_epoch  the new journal's latest truncation epoch at promotion (a demoted mirror starts from it)
 *   marker_lsn    the new journal's first own unit: an empty commit at the promotion position
 */
import type mysql from 'mysql2/promise';
import { type MysqlEndpoint, openSession } from '../mysql/session.ts';
import { quoteString } from '../mysql/sql.ts';
import { CorruptionError } from '../core/errors.ts';
import { type PositionJson, positionFromJson, positionToJson, type SourcePosition } from '../record/position.ts';

export const LINEAGE_TABLE = '`tidemark`.`failover_lineage`';

export interface Lineage {
  readonly source: string;
  readonly site: string;
  readonly promotedAt: string;
  readonly journalId: string;
  readonly branchOf: string;
  readonly branchLsn: bigint;
  readonly branchSeq: bigint;
  readonly branchTx: string;
  readonly branchEpoch: number;
  readonly markerLsn: bigint;
  /** The new primary's binlog position at promotion (the marker's position). */
  readonly position: SourcePosition;
}

export function createLineageSql(): string[] {
  return [
    'CREATE SCHEMA IF NOT EXISTS `tidemark`',
    `CREATE TABLE IF NOT EXISTS ${LINEAGE_TABLE} (
      source VARCHAR(64) NOT NULL PRIMARY KEY,
      site VARCHAR(64) NOT NULL,
      promoted_at VARCHAR(40) NOT NULL,
      journal_id VARCHAR(64) NOT NULL,
      branch_of VARCHAR(64) NOT NULL,
      branch_lsn BIGINT UNSIGNED NOT NULL,
      branch_seq BIGINT UNSIGNED NOT NULL,
      branch_tx VARCHAR(255) NOT NULL,
      branch_epoch INT UNSIGNED NOT NULL,
      marker_lsn BIGINT UNSIGNED NOT NULL,
      position TEXT NOT NULL
    ) ENGINE=InnoDB`,
  ];
}

export function upsertLineageSql(l: Lineage): string {
  const v = [
    quoteString(l.source),
    quoteString(l.site),
    quoteString(l.promotedAt),
    quoteString(l.journalId),
    quoteString(l.branchOf),
    l.branchLsn.toString(),
    l.branchSeq.toString(),
    quoteString(l.branchTx),
    String(l.branchEpoch),
    l.markerLsn.toString(),
    quoteString(JSON.stringify(positionToJson(l.position))),
  ];
  // INSERT … ON DUPLICATE KEY UPDATE, not REPLACE: REPLACE deletes the old row and so needs DELETE, which the
  // failover account's documented grants (SELECT, INSERT, UPDATE, CREATE on `tidemark`) do not have.
  const cols = ['site', 'promoted_at', 'journal_id', 'branch_of', 'branch_lsn', 'branch_seq', 'branch_tx'];
  const update = [...cols, 'branch_epoch', 'marker_lsn', 'position'].map((c) => `${c} = VALUES(${c})`).join(', ');
  return (
    `INSERT INTO ${LINEAGE_TABLE} (source, site, promoted_at, journal_id, branch_of, branch_lsn, branch_seq, ` +
    `branch_tx, branch_epoch, marker_lsn, position) VALUES (${v.join(', ')}) ON DUPLICATE KEY UPDATE ${update}`
  );
}

export function selectLineageSql(source: string): string {
  return `SELECT * FROM ${LINEAGE_TABLE} WHERE source = ${quoteString(source)}`;
}

const big = (v: unknown, key: string, where: string): bigint => {
  const s = String(v ?? '');
  if (!/^\d+$/.test(s)) throw new CorruptionError(`${where}: ${key} is not a number (${s})`, { where, key });
  return BigInt(s);
};

export function parseLineageRow(r: Record<string, unknown>, where: string): Lineage {
  let pos: unknown;
  try {
    pos = JSON.parse(String(r['position']));
  } catch (err) {
    throw new CorruptionError(`${where}: position is not JSON`, { where }, err);
  }
  return {
    source: String(r['source']),
    site: String(r['site']),
    promotedAt: String(r['promoted_at']),
    journalId: String(r['journal_id']),
    branchOf: String(r['branch_of']),
    branchLsn: big(r['branch_lsn'], 'branch_lsn', where),
    branchSeq: big(r['branch_seq'], 'branch_seq', where),
    branchTx: String(r['branch_tx']),
    branchEpoch: Number(r['branch_epoch']),
    markerLsn: big(r['marker_lsn'], 'marker_lsn', where),
    position: positionFromJson(pos as PositionJson, `${where}: position`),
  };
}

export async function writeLineage(ep: MysqlEndpoint, l: Lineage): Promise<void> {
  const conn = await openSession(ep, { apply: false });
  try {
    for (const sql of createLineageSql()) await conn.query(sql);
    await conn.query(upsertLineageSql(l));
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** The lineage row of `source` on the server, or null when it has none (never promoted, or no table). */
export async function readLineage(ep: MysqlEndpoint, source: string): Promise<Lineage | null> {
  const conn = await openSession(ep, { apply: false });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(selectLineageSql(source)).catch((err: unknown) => {
      if ((err as { errno?: number }).errno === 1146) return [[] as mysql.RowDataPacket[]] as const;
      throw err;
    });
    const r = rows[0];
    return r ? parseLineageRow(r, `${ep.host}:${ep.port} ${LINEAGE_TABLE}`) : null;
  } finally {
    await conn.end().catch(() => undefined);
  }
}
