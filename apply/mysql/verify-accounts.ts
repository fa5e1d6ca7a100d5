/**
 * verify for the accounts of `source.accounts` (issue #16, opt-in): each listed user is compared by SHOW CREATE
 * USER (authentication, limits, TLS, lock state) and its SHOW GRANTS lines, each listed role by its SHOW GRANTS
 * lines, on both servers. An entry on neither server is equal (the source dropped it, the replica followed); on
 * one side only it differs. The definitions hold password hashes: a difference in SHOW CREATE USER is reported
 * without its text, and grant lines are shown redacted (mysql/accounts.ts redactSecrets).
 */
import type mysql from 'mysql2/promise';
import type { ObjectResult } from '../../engine/target.ts';
import { type RowsQuery, showAccountLines } from '../../mysql/account-show.ts';
import { accountSql, redactSecrets } from '../../mysql/accounts.ts';

/** One account as a server has it; null when absent. */
export interface AccountState {
  /** SHOW CREATE USER (users only). */
  readonly create: string | null;
  /** SHOW GRANTS FOR, sorted. */
  readonly grants: readonly string[];
}

const MAX_SHOWN = 3;

async function readState(q: RowsQuery, entry: string, who: string): Promise<AccountState | null> {
  const user = entry.includes('@');
  const grants = await showAccountLines(q, `SHOW GRANTS FOR ${accountSql(entry)}`, entry, who);
  if (grants === null) return null;
  const create = user ? await showAccountLines(q, `SHOW CREATE USER ${accountSql(entry)}`, entry, who) : null;
  return { create: create?.[0] ?? null, grants: [...grants].sort() };
}

/** Why `src` and `rep` differ (no secret in the text), or undefined when equal. Pure. */
export function accountDifference(src: AccountState | null, rep: AccountState | null): string | undefined {
  if (src === null && rep === null) return undefined;
  if (src === null) return 'not on the source (the replica still has it)';
  if (rep === null) return 'not on the replica';
  const why: string[] = [];
  if (src.create !== rep.create) {
    why.push('SHOW CREATE USER differs (authentication, limits, TLS or lock state; not shown: it holds the hash)');
  }
  const a = new Set(src.grants);
  const b = new Set(rep.grants);
  const onlySrc = src.grants.filter((g) => !b.has(g));
  const onlyRep = rep.grants.filter((g) => !a.has(g));
  const list = (xs: readonly string[]) =>
    xs
      .slice(0, MAX_SHOWN)
      .map((g) => redactSecrets(g))
      .join('; ') + (xs.length > MAX_SHOWN ? `; … ${xs.length - MAX_SHOWN} more` : '');
  if (onlySrc.length > 0) why.push(`grants on the source only: ${list(onlySrc)}`);
  if (onlyRep.length > 0) why.push(`grants on the replica only: ${list(onlyRep)}`);
  return why.length > 0 ? why.join('; ') : undefined;
}

const rowsQuery =
  (c: mysql.Connection): RowsQuery =>
  async (sql) => {
    const [rows] = await c.query({ sql, rowsAsArray: true });
    return rows as unknown as unknown[][];
  };

/** Compares the listed accounts of both servers, in the order of `entries`. */
export async function verifyAccounts(
  src: mysql.Connection,
  rep: mysql.Connection,
  entries: readonly string[],
): Promise<ObjectResult[]> {
  const out: ObjectResult[] = [];
  for (const entry of entries) {
    const a = await readState(rowsQuery(src), entry, 'the source account');
    const b = await readState(rowsQuery(rep), entry, 'the target account');
    const differs = accountDifference(a, b);
    out.push({
      kind: entry.includes('@') ? 'user' : 'role',
      schema: '',
      name: entry,
      equal: differs === undefined,
      ...(differs ? { differs } : {}),
    });
  }
  return out;
}
