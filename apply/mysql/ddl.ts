/**
 * Running one journal DDL statement on the replica. The caller has recorded the DDL as pending (committed)
 * before, and records it as applied after (see README.md, "DDL"). `rerun` says this very DDL was already pending
 * when the applier started: it may or may not have run before the crash, so errors meaning "its effect is already
 * there" (errors.ts DDL_ALREADY_DONE_ERRNO) count as success — only then. User, role and grant statements
 * (source.accounts) run as the source ran them; a failure's server message is redacted (it may quote a password).
 */
import type { Logger } from 'pino';
import type { DdlEntry } from '../../record/record.ts';
import { isDdlAlreadyDone, redactAccountError } from './errors.ts';
import { parseAccountDdl } from '../../mysql/accounts.ts';
import { serverFields } from '../../mysql/errors.ts';
import type { QueryFn } from './exec.ts';
import { useSchema } from '../../mysql/sql.ts';
import { SQL_MODE } from '../../mysql/session.ts';
import {
  disableOnReplicaSql,
  enabledEventsSql,
  eventDefinerSql,
  type ObjectDdl,
  parseObjectDdl,
  replicaObjectSql,
} from '../../mysql/objects.ts';
import { tokenize } from '../../mysql/sql-text.ts';

/**
 * The statement as the replica runs it (mysql/objects.ts replicaObjectSql): a trigger guarded, an event created
 * or enabled DISABLE ON SLAVE, an ALTER EVENT keeping the event's definer as the replica has it.
 */
async function replicaStatement(q: QueryFn, sql: string, obj: ObjectDdl | null): Promise<string> {
  if (obj?.kind !== 'event' || obj.verb !== 'ALTER' || !obj.objects[0]) return replicaObjectSql(sql, obj);
  const [row] = (await q('meta', eventDefinerSql(obj.objects[0]))) as { d: string }[];
  return replicaObjectSql(sql, obj, row?.d);
}

/**
 * A DROP of an object the replica does not have: the end state (no such object) is there. Objects hold no rows, so
 * this is safe, and it happens without any fault: a DROP TRIGGER names no table, so one on an excluded table of an
 * included schema is journaled though the trigger never reached the replica.
 */
const OBJECT_ABSENT_ERRNO: ReadonlySet<number> = new Set([
  1051, // unknown table (DROP VIEW on MySQL)
  1305, // procedure/function does not exist
  1360, // trigger does not exist
  1539, // unknown event
  4092, // unknown VIEW (MariaDB)
]);

/** Note: "The user specified as a definer does not exist". */
const ER_NO_SUCH_USER = 1449;

export async function executeDdl(q: QueryFn, e: DdlEntry, rerun: boolean, log: Logger): Promise<void> {
  if (e.schema !== '') {
    try {
      await q('use', useSchema(e.schema));
    } catch (err) {
      // The statement may still work if it names its schemas (e.g. CREATE DATABASE while in a filtered schema).
      if (serverFields(err).errno !== 1049) throw err;
      log.warn({ seq: e.seq.toString(), schema: e.schema }, 'DDL default schema missing on the replica');
    }
  }
  const obj = parseObjectDdl(tokenize(e.sql), e.schema);
  // An object keeps the sql_mode it was created under and runs with it later (after a promotion: for the
  // application). Not tidemark's session mode (NO_AUTO_VALUE_ON_ZERO, …): the server's default, as the
  // application's own sessions get it. The source's exact mode is not in the binlog text.
  const ownMode = obj !== null && obj.verb !== 'DROP';
  try {
    if (ownMode) await q('ddl', 'SET SESSION sql_mode = @@GLOBAL.sql_mode');
    await q('ddl', await replicaStatement(q, e.sql, obj));
  } catch (err) {
    // A user/role/grant statement may carry a password or hash: the server's message must not quote it.
    if (obj === null && parseAccountDdl(e.sql)) redactAccountError(err);
    if (obj?.verb === 'DROP' && OBJECT_ABSENT_ERRNO.has(serverFields(err).errno ?? 0)) {
      log.warn(
        { seq: e.seq.toString(), kind: obj.kind, errno: serverFields(err).errno },
        `${obj.kind} to drop is not on the replica (never created there, e.g. a trigger of an excluded table); ` +
          'nothing to drop',
      );
      return;
    }
    if (!(rerun && isDdlAlreadyDone(err))) throw err;
    log.warn(
      { seq: e.seq.toString(), errno: serverFields(err).errno },
      'pending DDL had already run before the restart; treated as applied',
    );
  } finally {
    if (ownMode) await q('ddl', `SET SESSION sql_mode = '${SQL_MODE}'`);
  }
  if (obj && obj.verb !== 'DROP') {
    // MariaDB creates an object whose DEFINER account is missing here, with a note; using it fails later (1449).
    const notes = (await q('meta', 'SHOW WARNINGS')) as { Code?: number; Message?: string }[];
    for (const n of notes.filter((w) => Number(w.Code) === ER_NO_SUCH_USER)) {
      log.warn(
        { seq: e.seq.toString(), kind: obj.kind, object: `${obj.objects[0]?.schema}.${obj.objects[0]?.name}` },
        `${n.Message ?? 'definer missing'} on the replica: create that account there (a trigger with a missing ` +
          'definer makes every write to its table fail)',
      );
    }
  }
  if (obj?.kind === 'event' && obj.verb !== 'DROP') {
    const rows = (await q('meta', enabledEventsSql(obj.objects))) as { s: string; n: string; d: string }[];
    for (const r of rows) {
      await q('ddl', disableOnReplicaSql({ schema: r.s, name: r.n, definer: r.d }));
      log.info({ seq: e.seq.toString(), event: `${r.s}.${r.n}` }, 'replicated event disabled on the replica');
    }
  }
}
