/**
 * Schema objects that are not tables — views, stored procedures and functions, triggers, events — as SQL text
 * (issue #16). Pure; the one place that knows their statement shapes, used by capture (classifying binlog Query
 * events, capture/mysql/ddl.ts), apply (apply/mysql/ddl.ts: guarding triggers, disabling events), promotion
 * (failover/promote.ts) and the comparisons of definitions.
 *
 *   parseObjectDdl       CREATE [OR REPLACE] [ALGORITHM=…] [DEFINER=…] [SQL SECURITY …] VIEW|TRIGGER|PROCEDURE|
 *                        FUNCTION|EVENT name …, ALTER … VIEW|PROCEDURE|FUNCTION|EVENT name, DROP … [IF EXISTS]
 *                        name[, name…]: the kind and the objects, schema-qualified (a trigger also names its table).
 *                        A loadable function (CREATE FUNCTION f RETURNS … SONAME) is not a schema object: null.
 *   guardTrigger         a replica's triggers must not fire for tidemark's own writes (the journal already holds
 *                        their effects as rows): the body becomes IF @tidemark_apply IS NULL THEN <body> END IF.
 *                        tidemark's apply and rewind sessions set @tidemark_apply (mysql/session.ts); every other
 *                        session — the application after a takeover — fires the trigger as the source did.
 *   events               a replicated enabled event is created (or altered) DISABLE ON SLAVE on the replica (STATUS
 *                        SLAVESIDE_DISABLED, as MariaDB's own replication marks it) and enabled again at promotion.
 *   normaliseDefinition  SHOW CREATE text compared across source and replica: the guard stripped, an event's
 *                        DISABLE ON SLAVE read as ENABLE (a replicated enabled event is SLAVESIDE_DISABLED).
 */
import { Cursor, type TableRef, type Token, tokenize } from './sql-text.ts';
import { qualified, quoteIdent, quoteString } from './sql.ts';

export type ObjectKind = 'view' | 'procedure' | 'function' | 'trigger' | 'event';

export interface ObjectRef {
  readonly schema: string;
  readonly name: string;
}

export interface ObjectDdl {
  readonly verb: 'CREATE' | 'ALTER' | 'DROP';
  readonly kind: ObjectKind;
  /** The objects the statement names (DROP VIEW a, b; ALTER EVENT e RENAME TO f: both). */
  readonly objects: readonly ObjectRef[];
  /** CREATE TRIGGER: the table it is on. */
  readonly table?: TableRef;
}

/** SHOW CREATE <what> of each kind, and the column of its result that holds the definition. */
export const SHOW_CREATE: Readonly<Record<ObjectKind, { readonly what: string; readonly col: number }>> = {
  procedure: { what: 'PROCEDURE', col: 2 },
  function: { what: 'FUNCTION', col: 2 },
  view: { what: 'VIEW', col: 1 },
  trigger: { what: 'TRIGGER', col: 2 },
  event: { what: 'EVENT', col: 3 },
};

/** The user variable tidemark's apply sessions set; a guarded trigger body runs only where it is NULL. */
export const APPLY_MARK = '@tidemark_apply';
const GUARD_HEAD = `IF ${APPLY_MARK} IS NULL THEN\n`;
const GUARD_TAIL = '\n;\nEND IF';

const KINDS: Readonly<Record<string, ObjectKind>> = {
  VIEW: 'view',
  TRIGGER: 'trigger',
  PROCEDURE: 'procedure',
  FUNCTION: 'function',
  EVENT: 'event',
};

/** DEFINER = account: `u`@`h`, 'u'@'h', u@h, a role, CURRENT_USER[()], CURRENT_ROLE[()]. */
function skipAccount(c: Cursor): void {
  if (c.accept('CURRENT_USER') || c.accept('CURRENT_ROLE')) {
    if (c.acceptPunct('(')) c.acceptPunct(')');
    return;
  }
  c.pos++;
  if (c.acceptPunct('@')) c.pos++;
}

/** The clauses before the object keyword: ALGORITHM = x, DEFINER = account, SQL SECURITY x, AGGREGATE. */
function skipPrefixes(c: Cursor): void {
  for (;;) {
    if (c.accept('ALGORITHM')) {
      c.acceptPunct('=');
      c.pos++;
    } else if (c.accept('DEFINER')) {
      c.acceptPunct('=');
      skipAccount(c);
    } else if (c.accept('SQL', 'SECURITY')) {
      c.pos++;
    } else if (!c.accept('AGGREGATE')) {
      return;
    }
  }
}

function objectName(c: Cursor, defaultSchema: string): ObjectRef | undefined {
  const t = c.tableName(defaultSchema);
  return t && { schema: t.schema, name: t.table };
}

/** The object statement `toks` is, or null when it is none (tables, users, loadable functions, …). */
export function parseObjectDdl(toks: readonly Token[], defaultSchema: string): ObjectDdl | null {
  const c = new Cursor(toks);
  const verb = c.peekWord();
  if (verb !== 'CREATE' && verb !== 'ALTER' && verb !== 'DROP') return null;
  c.pos++;
  if (verb === 'CREATE') c.accept('OR', 'REPLACE');
  if (verb !== 'DROP') skipPrefixes(c);
  const kind = KINDS[c.peekWord() ?? ''];
  if (!kind || (verb === 'ALTER' && kind === 'trigger')) return null;
  c.pos++;
  c.accept('IF', 'NOT', 'EXISTS') || c.accept('IF', 'EXISTS');
  const first = objectName(c, defaultSchema);
  if (!first) return null;
  const objects: ObjectRef[] = [first];
  if (verb === 'CREATE' && kind === 'function' && c.peekWord() === 'RETURNS') return null;
  if (verb === 'DROP') {
    while (c.acceptPunct(',')) {
      const o = objectName(c, defaultSchema);
      if (o) objects.push(o);
    }
  }
  if (verb === 'ALTER' && kind === 'event') {
    while (!c.done() && !c.accept('RENAME', 'TO')) c.pos++;
    const to = objectName(c, defaultSchema);
    if (to) objects.push(to);
  }
  if (verb === 'CREATE' && kind === 'trigger') {
    c.pos += 2; // BEFORE|AFTER INSERT|UPDATE|DELETE
    const table = c.accept('ON') ? c.tableName(first.schema) : undefined;
    return table ? { verb, kind, objects, table } : null;
  }
  return { verb, kind, objects };
}

/** How a CREATE statement treats an object that exists: OR REPLACE, IF NOT EXISTS (both false: it fails). */
export function createClauses(sql: string): { readonly orReplace: boolean; readonly ifNotExists: boolean } {
  const c = new Cursor(tokenize(sql));
  if (!c.accept('CREATE')) return { orReplace: false, ifNotExists: false };
  const orReplace = c.accept('OR', 'REPLACE');
  skipPrefixes(c);
  c.pos++;
  return { orReplace, ifNotExists: c.accept('IF', 'NOT', 'EXISTS') };
}

/** Offset where a CREATE TRIGGER's body starts (after FOR EACH ROW [FOLLOWS|PRECEDES name]), or -1. */
function triggerBodyAt(sql: string, toks: readonly Token[]): number {
  const c = new Cursor(toks);
  while (!c.done() && !c.accept('FOR', 'EACH', 'ROW')) c.pos++;
  if (c.done()) return -1;
  if (c.accept('FOLLOWS') || c.accept('PRECEDES')) c.tableName('');
  const t = toks[c.pos];
  return t ? t.at : sql.length;
}

const trimBody = (body: string) => body.replace(/[\s;]+$/, '');

/**
 * A CREATE TRIGGER whose body runs only outside tidemark's sessions; any other statement unchanged (also one
 * already guarded, so a re-run does not nest guards).
 */
export function guardTrigger(sql: string): string {
  const toks = tokenize(sql);
  const d = parseObjectDdl(toks, '');
  if (d?.verb !== 'CREATE' || d.kind !== 'trigger') return sql;
  const at = triggerBodyAt(sql, toks);
  if (at < 0) return sql;
  const body = sql.slice(at);
  if (body.startsWith(GUARD_HEAD)) return sql;
  return `${sql.slice(0, at)}${GUARD_HEAD}${trimBody(body)}${GUARD_TAIL}`;
}

/** The trigger statement as the source wrote it: guardTrigger undone (trailing blanks and semicolons trimmed). */
export function unguardTrigger(sql: string): string {
  const toks = tokenize(sql);
  const at = triggerBodyAt(sql, toks);
  if (at < 0) return sql;
  const body = sql.slice(at);
  if (body.startsWith(GUARD_HEAD) && body.endsWith(GUARD_TAIL)) {
    return sql.slice(0, at) + body.slice(GUARD_HEAD.length, body.length - GUARD_TAIL.length);
  }
  return sql.slice(0, at) + trimBody(body);
}

/**
 * A definition from SHOW CREATE VIEW/PROCEDURE/FUNCTION/TRIGGER/EVENT, normalised so a source's and its replica's
 * compare equal: the trigger guard stripped, DISABLE ON SLAVE (replicated enabled event) read as ENABLE, trailing
 * blanks trimmed. The definer is kept: it is part of the definition.
 */
export function normaliseDefinition(kind: ObjectKind, text: string): string {
  if (kind === 'trigger') return unguardTrigger(text).trimEnd();
  if (kind === 'event') return text.replace(/\bDISABLE ON SLAVE\b/i, 'ENABLE').trimEnd();
  return text.trimEnd();
}

const eventName = (o: ObjectRef) => qualified(o.schema, o.name);

/** An event as information_schema.EVENTS gives it: DEFINER is "user@host" (the host never holds an @). */
export interface EventRow extends ObjectRef {
  readonly definer: string;
}

/** The events among `objects` that are ENABLED (EVENT_SCHEMA s, EVENT_NAME n, DEFINER d). */
export function enabledEventsSql(objects: readonly ObjectRef[]): string {
  const pairs = objects.map((o) => `(${quoteString(o.schema)}, ${quoteString(o.name)})`).join(', ');
  return (
    'SELECT EVENT_SCHEMA AS s, EVENT_NAME AS n, DEFINER AS d FROM information_schema.EVENTS ' +
    `WHERE STATUS = 'ENABLED' AND (EVENT_SCHEMA, EVENT_NAME) IN (${pairs})`
  );
}

/** `u`@`h` of an information_schema DEFINER "u@h". */
function definerSql(definer: string): string {
  const at = definer.lastIndexOf('@');
  return at < 0 ? quoteIdent(definer) : `${quoteIdent(definer.slice(0, at))}@${quoteIdent(definer.slice(at + 1))}`;
}

/** ALTER DEFINER=`u`@`h` EVENT: an ALTER EVENT without DEFINER would make the altering account the definer. */
function alterEvent(e: EventRow): string {
  return `ALTER DEFINER=${definerSql(e.definer)} EVENT ${eventName(e)}`;
}

/** The DEFINER of one event (column d), to keep it through an ALTER EVENT that names none (alterKeepingDefiner). */
export function eventDefinerSql(o: ObjectRef): string {
  return (
    'SELECT DEFINER AS d FROM information_schema.EVENTS ' +
    `WHERE EVENT_SCHEMA = ${quoteString(o.schema)} AND EVENT_NAME = ${quoteString(o.name)}`
  );
}

/**
 * An ALTER EVENT without a DEFINER clause as the binlog carries it (the source's altering account is not in the
 * text) with `definer` (the event's definer on the replica) put in, so tidemark's account does not become it.
 */
export function alterKeepingDefiner(sql: string, definer: string): string {
  const toks = tokenize(sql);
  const c = new Cursor(toks);
  if (!c.accept('ALTER') || toks.some((t) => t.t === 'word' && t.up === 'DEFINER')) return sql;
  const at = toks[1]?.at ?? sql.length;
  return `${sql.slice(0, at)}DEFINER=${definerSql(definer)} ${sql.slice(at)}`;
}

/**
 * CREATE EVENT, or ALTER EVENT … ENABLE, as a replica runs it: DISABLE ON SLAVE in the statement itself (ENABLE
 * replaced, or added to a CREATE naming no status), so the replica's scheduler never runs the event — an ALTER
 * after the CREATE comes too late: an EVERY event without STARTS runs the instant it is created. A DISABLE is kept.
 */
export function createDisabledOnReplica(sql: string): string {
  const toks = tokenize(sql);
  const d = parseObjectDdl(toks, '');
  if (d?.kind !== 'event' || d.verb === 'DROP') return sql;
  const c = new Cursor(toks);
  c.pos++;
  c.accept('OR', 'REPLACE');
  skipPrefixes(c);
  c.pos++; // EVENT
  c.accept('IF', 'NOT', 'EXISTS');
  objectName(c, '');
  let insertAt = -1;
  for (const t of toks.slice(c.pos)) {
    if (t.t !== 'word') continue;
    if (t.up === 'DISABLE') return sql;
    if (t.up === 'ENABLE') return `${sql.slice(0, t.at)}DISABLE ON SLAVE${sql.slice(t.at + t.v.length)}`;
    if (t.up === 'COMMENT' || t.up === 'DO') {
      insertAt = t.at;
      break;
    }
  }
  if (d.verb === 'ALTER' || insertAt < 0) return sql;
  return `${sql.slice(0, insertAt)}DISABLE ON SLAVE ${sql.slice(insertAt)}`;
}

/**
 * The DEFINER of a CREATE statement as information_schema writes it ("user@host"), or null when it names none
 * (or names CURRENT_USER / a role without a host). Quoted parts are read as written: `u`@`h`, 'u'@'h', u@h.
 */
export function definerOf(sql: string): string | null {
  const toks = tokenize(sql);
  const i = toks.findIndex((t) => t.t === 'word' && t.up === 'DEFINER');
  const at = toks[i + 3];
  if (i < 0 || toks[i + 1]?.t !== 'punct' || at?.t !== 'punct' || at.v !== '@') return null;
  const part = (k: number): string | null => {
    const t = toks[k];
    if (!t || t.t === 'punct') return null;
    if (t.t !== 'string') return t.v;
    const raw = sql.slice(t.at, toks[k + 1]?.at ?? sql.length).trimEnd();
    const q = raw[0]!;
    return raw
      .slice(1, -1)
      .replaceAll(q + q, q)
      .replace(/\\(.)/g, '$1');
  };
  const user = part(i + 2);
  const host = part(i + 4);
  if (user === null || host === null) return null;
  if (user.toUpperCase() === 'CURRENT_USER') return null;
  return `${user}@${host}`;
}

/**
 * An object statement as a replica runs it, the pure part (apply/mysql/ddl.ts adds the look-up of an altered
 * event's definer; rewind takes it from the event's CREATE): a trigger guarded, an event created or enabled
 * DISABLE ON SLAVE, an ALTER EVENT given `eventDefiner` ("user@host") when it names no definer itself.
 */
export function replicaObjectSql(sql: string, obj: ObjectDdl | null, eventDefiner?: string | null): string {
  if (obj?.kind === 'trigger') return guardTrigger(sql);
  if (obj?.kind !== 'event' || obj.verb === 'DROP') return sql;
  const off = createDisabledOnReplica(sql);
  return obj.verb === 'ALTER' && eventDefiner ? alterKeepingDefiner(off, eventDefiner) : off;
}

/** DROP <kind> IF EXISTS `schema`.`name`. */
export function dropIfExistsSql(kind: ObjectKind, o: ObjectRef): string {
  return `DROP ${SHOW_CREATE[kind].what} IF EXISTS ${qualified(o.schema, o.name)}`;
}

/** A replicated enabled event stays off on the replica, as MariaDB's own replication marks it. */
export function disableOnReplicaSql(e: EventRow): string {
  return `${alterEvent(e)} DISABLE ON SLAVE`;
}

/** At promotion: the events the source had enabled (SLAVESIDE_DISABLED here) run again. */
export const SLAVESIDE_DISABLED_EVENTS_SQL =
  "SELECT EVENT_SCHEMA AS s, EVENT_NAME AS n, DEFINER AS d FROM information_schema.EVENTS WHERE STATUS = 'SLAVESIDE_DISABLED' " +
  'ORDER BY EVENT_SCHEMA, EVENT_NAME';

export function enableEventSql(e: EventRow): string {
  return `${alterEvent(e)} ENABLE`;
}
