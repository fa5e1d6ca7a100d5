/**
 * Rewind and forward across object DDL (issue #16): views, procedures, functions, triggers and events hold no
 * rows, so a window that creates, alters or drops them is not refused — each object the window touches is put
 * into the state it had at the point. Pure: rollback-index queries only (the exact statement texts come from the
 * journal: objects-run.ts).
 *
 * The state of an object at point P is read from the journal, whose baseline carries every object as DDL too:
 * walking back from P, the last DROP means "absent"; otherwise the statements that define it are the last CREATE
 * at or before P and the ALTERs after it up to P (a CREATE … IF NOT EXISTS of an object that already existed did
 * nothing and is skipped; an event renamed by ALTER EVENT … RENAME TO continues with the history of its old
 * name). The plan for P is: DROP … IF EXISTS of every touched object, then all their defining statements in
 * journal order (the order they worked in on the source: a view after the view it reads). A forward is the
 * same plan at its end point, which equals replaying the window's object DDL on top of the state before it.
 *
 * An event renamed in a chain brings its old name along (closure): replaying its CREATE needs the old name free.
 * A trigger re-created brings the other triggers of its table: re-created in journal order, they keep the order
 * they fire in (ACTION_ORDER).
 * When the journal no longer holds an object's definition at P (retention removed the baseline and its last
 * CREATE), the plan is refused, naming the object.
 */
import { type ErrorContext, TidemarkError } from '../core/errors.ts';
import { parseAccountDdl, redactSecrets } from '../mysql/accounts.ts';
import {
  createClauses,
  definerOf,
  dropIfExistsSql,
  type ObjectDdl,
  type ObjectKind,
  type ObjectRef,
  parseObjectDdl,
  replicaObjectSql,
} from '../mysql/objects.ts';
import { SQL_MODE } from '../mysql/session.ts';
import { useSchema } from '../mysql/sql.ts';
import { tokenize } from '../mysql/sql-text.ts';
import type { DdlInfo, RollbackIndex } from './index/index.ts';
import { formatTimeUs } from './time.ts';

/** One object DDL statement of the journal, parsed. */
export interface ObjectDdlInfo {
  readonly info: DdlInfo;
  readonly obj: ObjectDdl;
  /** A CREATE … OR REPLACE, a CREATE … IF NOT EXISTS. */
  readonly orReplace: boolean;
  readonly ifNotExists: boolean;
}

/** An object: its kind and schema-qualified name. */
export interface ObjectKey extends ObjectRef {
  readonly kind: ObjectKind;
}

/** One step of an object plan: drop an object if it exists, or run a journal statement again. */
export type ObjectStep =
  | { readonly kind: 'drop'; readonly object: ObjectKey }
  | { readonly kind: 'replay'; readonly ddl: ObjectDdlInfo };

export interface ObjectPlan {
  /** The objects the plan resets (the window's, plus renamed events' old names). */
  readonly objects: readonly ObjectKey[];
  readonly steps: readonly ObjectStep[];
}

/** Routine and event names are case-insensitive on the server; view and trigger names are compared as written. */
function keyText(k: ObjectKey): string {
  const fold = k.kind === 'procedure' || k.kind === 'function' || k.kind === 'event';
  const name = fold ? k.name.toLowerCase() : k.name;
  return `${k.kind}\u0000${k.schema}\u0000${name}`;
}

const keyOf = (kind: ObjectKind, o: ObjectRef): ObjectKey => ({ kind, schema: o.schema, name: o.name });

/** The object statement a journal DDL is, or null (tables, databases, accounts, …). */
export function objectDdlOf(d: DdlInfo): ObjectDdlInfo | null {
  const obj = parseObjectDdl(tokenize(d.sql), d.schema);
  return obj && { info: d, obj, ...createClauses(d.sql) };
}

/** `d` is a statement rewind and forward can cross: an object statement, or a user/role/grant statement. */
export function crossable(d: DdlInfo): boolean {
  return parseAccountDdl(d.sql) !== null || objectDdlOf(d) !== null;
}

function usage(message: string, context: ErrorContext = {}): TidemarkError {
  return new TidemarkError(message, { code: 'REWIND_POINT', context });
}

type State = { readonly defined: readonly ObjectDdlInfo[] } | { readonly absent: true } | { readonly unknown: string };

/** The journal's object statements up to some seq, ascending, and what is known before the first of them. */
export interface ObjectHistory {
  readonly all: readonly ObjectDdlInfo[];
  /** The journal still starts with its baseline: an object no statement names did not exist. */
  readonly complete: boolean;
}

/** Every object statement with seq <= upto (the baseline's included). */
export function objectHistory(index: RollbackIndex, upto: bigint): ObjectHistory {
  const all: ObjectDdlInfo[] = [];
  for (const d of index.ddlBetween(-1n, upto)) {
    const o = objectDdlOf(d);
    if (o) all.push(o);
  }
  // The baseline's objects are one unit, its last before the 'baseline-end' commit (capture/mysql/baseline.ts), and
  // the index drops whole transactions oldest first: while its oldest is a baseline unit, that unit is still there.
  const oldest = index.listTxs({ order: 'asc', limit: 1 })[0];
  return { all, complete: oldest?.phase === 'baseline' };
}

const names = (d: ObjectDdlInfo, k: ObjectKey): number => {
  if (d.obj.kind !== k.kind) return -1;
  const t = keyText(k);
  return d.obj.objects.findIndex((o) => keyText(keyOf(k.kind, o)) === t);
};

const describe = (k: ObjectKey) => `${k.kind} \`${k.schema}\`.\`${k.name}\``;

/** The state of object `k` after every statement with seq <= p (see the module comment). */
function stateAt(h: ObjectHistory, k: ObjectKey, p: bigint): State {
  const acc: ObjectDdlInfo[] = [];
  let i = h.all.length - 1;
  while (i >= 0 && h.all[i]!.info.seq > p) i--;
  for (; i >= 0; i--) {
    const d = h.all[i]!;
    const at = names(d, k);
    if (at < 0) continue;
    const { verb } = d.obj;
    if (verb === 'DROP')
      return acc.length ? { unknown: `an ALTER at seq ${acc[0]!.info.seq} follows its DROP` } : { absent: true };
    const renamed = verb === 'ALTER' && d.obj.objects.length > 1;
    if (renamed && at === 0 && keyText(keyOf(k.kind, d.obj.objects[1]!)) !== keyText(k)) {
      return acc.length ? { unknown: `an ALTER at seq ${acc[0]!.info.seq} follows its rename` } : { absent: true };
    }
    if (renamed && at === 1) {
      const before = stateAt(h, keyOf(k.kind, d.obj.objects[0]!), d.info.seq - 1n);
      return 'defined' in before ? { defined: [...before.defined, d, ...acc] } : before;
    }
    if (verb === 'CREATE' && d.ifNotExists) {
      const before = stateAt(h, k, d.info.seq - 1n);
      if ('defined' in before) return { defined: [...before.defined, ...acc] }; // it existed: the CREATE did nothing
      if ('unknown' in before) return before;
      return { defined: [d, ...acc] };
    }
    acc.unshift(d);
    if (verb === 'CREATE') return { defined: acc };
  }
  if (acc.length) return { unknown: `the journal holds no CREATE before its ALTER at seq ${acc[0]!.info.seq}` };
  if (h.complete) return { absent: true };
  // Created after p by a plain CREATE (no OR REPLACE, no IF NOT EXISTS): it did not exist before.
  const next = h.all.find((d) => d.info.seq > p && names(d, k) >= 0);
  if (next?.obj.verb === 'CREATE' && !next.orReplace && !next.ifNotExists) return { absent: true };
  return { unknown: 'the journal no longer holds its definition (retention removed the baseline)' };
}

/** The objects the object statements in (lo, hi] name, in first-seen order. */
export function windowObjects(h: ObjectHistory, lo: bigint, hi: bigint): ObjectKey[] {
  const out = new Map<string, ObjectKey>();
  for (const d of h.all) {
    if (d.info.seq <= lo || d.info.seq > hi) continue;
    for (const o of d.obj.objects) {
      const k = keyOf(d.obj.kind, o);
      if (!out.has(keyText(k))) out.set(keyText(k), k);
    }
  }
  return [...out.values()];
}

/**
 * The plan that puts `objects` into their state at `point`, with the old names of events renamed in their
 * definitions, and every trigger of the table of a re-created trigger (the order triggers of one table, timing
 * and event fire in is the order they were created in: all are re-created in journal order, so it stays). Refuses,
 * naming the object, when the journal cannot tell that state.
 */
export function planObjectsAt(h: ObjectHistory, objects: readonly ObjectKey[], point: bigint): ObjectPlan {
  const set = new Map<string, ObjectKey>(objects.map((k) => [keyText(k), k]));
  const replay = new Map<bigint, ObjectDdlInfo>();
  const queue = [...set.values()];
  const add = (k: ObjectKey): void => {
    if (set.has(keyText(k))) return;
    set.set(keyText(k), k);
    queue.push(k);
  };
  while (queue.length > 0) {
    const k = queue.shift()!;
    const s = stateAt(h, k, point);
    if ('unknown' in s) {
      throw usage(
        `cannot put ${describe(k)} back as it was at seq ${point}: ${s.unknown}; choose a point after the last ` +
          'statement that names it, or restore',
        { seq: point },
      );
    }
    if (!('defined' in s)) continue;
    for (const d of s.defined) {
      replay.set(d.info.seq, d);
      for (const o of d.obj.objects) add(keyOf(d.obj.kind, o));
      // A re-created trigger would fire after its table's other triggers: re-create them all, in journal order.
      const table = d.obj.table;
      if (!table) continue;
      for (const x of h.all) {
        const on = x.obj.table;
        if (x.info.seq > point || !on || on.schema !== table.schema || on.table !== table.table) continue;
        for (const o of x.obj.objects) add(keyOf('trigger', o));
      }
    }
  }
  const keys = [...set.values()];
  const steps: ObjectStep[] = keys.map((object) => ({ kind: 'drop', object }));
  for (const ddl of [...replay.values()].sort((a, b) => (a.info.seq < b.info.seq ? -1 : 1))) {
    steps.push({ kind: 'replay', ddl });
  }
  return { objects: keys, steps };
}

/** One line per step for the plan output (statement text redacted, one line, cut at 160 characters). */
export function stepLine(s: ObjectStep): string {
  if (s.kind === 'drop') return `drop ${describe(s.object)} if it exists`;
  const d = s.ddl.info;
  const text = redactSecrets(d.sql).replace(/\s+/g, ' ').slice(0, 160);
  return `replay seq ${d.seq} (${d.txId}, committed ${formatTimeUs(d.commitTimeUs)}): ${text}`;
}

/** One statement of an object plan as it runs; `what` is one line for output and errors (redacted). */
export interface ObjectStatement {
  readonly sql: string;
  readonly what: string;
}

/**
 * The statements of a plan. `exact` holds each replayed statement's text as the journal has it (the index keeps
 * DDL redacted). On a replica (`replica`) they run as apply runs them (mysql/objects.ts replicaObjectSql): a
 * trigger guarded, an event DISABLE ON SLAVE, an ALTER EVENT with the definer of the event's CREATE; on the source
 * as the source ran them. Objects are created under the server's sql_mode, as apply creates them, then the
 * session's mode comes back.
 */
export function objectStatements(
  plan: ObjectPlan,
  exact: ReadonlyMap<bigint, string>,
  replica: boolean,
): ObjectStatement[] {
  const out: ObjectStatement[] = [];
  const definers = new Map<string, string>();
  let ownMode = false;
  for (const s of plan.steps) {
    if (s.kind === 'drop') {
      out.push({ sql: dropIfExistsSql(s.object.kind, s.object), what: stepLine(s) });
      continue;
    }
    const { info, obj } = s.ddl;
    const sql = exact.get(info.seq);
    if (sql === undefined) throw new Error(`object plan: no journal text for seq ${info.seq}`);
    if (!ownMode && obj.verb !== 'DROP') {
      out.push({
        sql: 'SET SESSION sql_mode = @@GLOBAL.sql_mode',
        what: "objects are created under the server's sql_mode",
      });
      ownMode = true;
    }
    if (info.schema !== '')
      out.push({ sql: useSchema(info.schema), what: `default schema ${info.schema} of seq ${info.seq}` });
    let definer: string | null = null;
    if (obj.kind === 'event' && obj.objects[0]) {
      const k = keyText(keyOf('event', obj.objects[0]));
      const own = definerOf(sql);
      if (own) definers.set(k, own);
      definer = definers.get(k) ?? null;
      const to = obj.objects[1];
      if (definer && to) definers.set(keyText(keyOf('event', to)), definer);
    }
    out.push({ sql: replica ? replicaObjectSql(sql, obj, definer) : sql, what: stepLine(s) });
  }
  if (ownMode) out.push({ sql: `SET SESSION sql_mode = '${SQL_MODE}'`, what: "the session's sql_mode again" });
  return out;
}

/**
 * A forward across object statements the journal cannot plan (their objects' earlier definitions went with
 * retention). `forward --to-head` then stops at the end of the transaction before the window's first object
 * statement (`end`), releases the hold, and apply, resuming there, runs the object statements as they come (`note`
 * says so), as for a change that cascaded (cascade.ts forwardLimit); any other forward is refused.
 */
export function objectForwardLimit(
  index: RollbackIndex,
  lo: bigint,
  hi: bigint,
  toHead: boolean,
): { end: bigint; note: string | null } {
  if (!index.ddlBetween(lo, hi).some((d) => objectDdlOf(d) !== null)) return { end: hi, note: null };
  const h = objectHistory(index, hi);
  try {
    planObjectsAt(h, planObjectsAt(h, windowObjects(h, lo, hi), hi).objects, lo);
    return { end: hi, note: null };
  } catch (err) {
    const first = h.all.find((d) => d.info.seq > lo && d.info.seq <= hi);
    const t = first && index.txContaining(first.info.seq);
    if (!toHead || !t || !(err instanceof TidemarkError)) throw err;
    const end = t.firstSeq - 1n < lo ? lo : t.firstSeq - 1n;
    return {
      end,
      note:
        `forward stops before transaction ${t.txId} (seq ${t.firstSeq}..${t.commitSeq}): ${err.message}. apply ` +
        'resumes from there and runs it and the rest, object statements included',
    };
  }
}
