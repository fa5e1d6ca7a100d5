/**
 * The sequence re-synchronisation of a PostgreSQL promotion (pg-sequences.ts): the decision per sequence, and the
 * statements sent, in order, against a scripted session; the real server is in test/it/pg-takeover-netns.it.test.ts.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.ts';
import { Deadline } from './fence.ts';
import { decideSequence, describeSequenceReport, PG_SEQUENCES_SQL, resyncPgSequences } from './pg-sequences.ts';

const up = { increment: 1n, min: 1n, max: 9223372036854775807n };
const down = { increment: -2n, min: -1000n, max: -1n };

describe('decideSequence', () => {
  it('sets an ascending sequence to its column max when its next value is not past it', () => {
    expect(decideSequence(up, 1n, false, 1n)).toEqual({ kind: 'setval', to: 1n, next: 1n });
    expect(decideSequence(up, 1n, false, 4200n)).toEqual({ kind: 'setval', to: 4200n, next: 1n });
    expect(decideSequence(up, 10n, true, 11n)).toEqual({ kind: 'setval', to: 11n, next: 11n });
    expect(decideSequence(up, 10n, true, 10n)).toEqual({ kind: 'past' });
    expect(decideSequence(up, 5n, false, 4n)).toEqual({ kind: 'past' });
  });

  it('leaves an empty table alone', () => {
    expect(decideSequence(up, 1n, false, null)).toEqual({ kind: 'empty' });
  });

  it('goes by the min for a negative increment', () => {
    // called at -10: the next value is -12; a column min of -12 collides, -11 does not.
    expect(decideSequence(down, -10n, true, -12n)).toEqual({ kind: 'setval', to: -12n, next: -12n });
    expect(decideSequence(down, -10n, true, -11n)).toEqual({ kind: 'past' });
    expect(decideSequence(down, -1n, false, -500n)).toEqual({ kind: 'setval', to: -500n, next: -1n });
  });

  it('does not set a value beyond the sequence bounds', () => {
    expect(decideSequence({ increment: 1n, min: 1n, max: 100n }, 1n, true, 101n)).toEqual({
      kind: 'out-of-range',
      value: 101n,
    });
    expect(decideSequence(down, -1n, false, -2000n)).toEqual({ kind: 'out-of-range', value: -2000n });
  });
});

interface Sent {
  readonly sql: string;
  readonly values?: unknown[];
}

/** A session answering from `answer`; what was sent, in order. */
function scripted(answer: (sql: string, values?: unknown[]) => Record<string, unknown>[]): {
  c: pg.Client;
  sent: Sent[];
} {
  const sent: Sent[] = [];
  const c = {
    query: async (sql: string, values?: unknown[]) => {
      sent.push({ sql, ...(values ? { values } : {}) });
      const rows = answer(sql, values);
      return { rows, rowCount: rows.length };
    },
  } as unknown as pg.Client;
  return { c, sent };
}

/** A row of the list query: `owner` is a column that uses the sequence ([schema, table, column, integer, plain]). */
const seqRow = (
  s: string,
  n: string,
  inc: string,
  owner: [string, string, string, boolean] | [string, string, string, boolean, boolean] | null,
) => ({
  s,
  n,
  inc,
  lo: inc.startsWith('-') ? '-9223372036854775808' : '1',
  hi: inc.startsWith('-') ? '-1' : '9223372036854775807',
  ts: owner?.[0] ?? null,
  t: owner?.[1] ?? null,
  col: owner?.[2] ?? null,
  int: owner ? String(owner[3]) : null,
  plain: owner ? String(owner[4] ?? true) : null,
});

/** resyncPgSequences within a 5 s deadline. */
async function resync(c: pg.Client) {
  const d = new Deadline(5000, 'test');
  try {
    return await resyncPgSequences(c, d, silentLogger);
  } finally {
    d.clear();
  }
}

describe('resyncPgSequences', () => {
  it('sets the owned sequences past their column, quoted; lists the unowned ones', async () => {
    const { c, sent } = scripted((sql) => {
      if (sql === PG_SEQUENCES_SQL.list)
        return [
          seqRow('app', 'w_id_seq', '1', ['app', 'w', 'id', true]),
          seqRow('app', 'free', '1', null),
          seqRow('Odd "s"', 'Line seq', '1', ['Odd "s"', 'Line "t"', 'Key', true]),
          seqRow('app', 'down_seq', '-1', ['app', 'down', 'n', true]),
          seqRow('app', 'empty_seq', '1', ['app', 'empty', 'id', true]),
          seqRow('app', 'txt_seq', '1', ['app', 'notes', 'code', false]),
        ];
      if (sql.includes('FROM "app"."w_id_seq"')) return [{ last: '1', called: 'false' }];
      if (sql.includes('FROM "app"."w"')) return [{ v: '4200' }];
      if (sql.includes('FROM "Odd ""s"""."Line seq"')) return [{ last: '90', called: 'true' }];
      if (sql.includes('FROM "Odd ""s"""."Line ""t"""')) return [{ v: '12' }];
      if (sql.includes('FROM "app"."down_seq"')) return [{ last: '-5', called: 'true' }];
      if (sql.includes('FROM "app"."down"')) return [{ v: '-40' }];
      if (sql.includes('FROM "app"."empty_seq"')) return [{ last: '1', called: 'false' }];
      if (sql.includes('FROM "app"."empty"')) return [{ v: null }];
      if (sql === PG_SEQUENCES_SQL.setval) return [{ v: '0' }];
      throw new Error(`unexpected statement: ${sql}`);
    });
    const r = await resync(c);
    expect(sent.map((s) => s.sql)).toEqual([
      PG_SEQUENCES_SQL.list,
      'SELECT last_value::text AS last, is_called::text AS called FROM "app"."w_id_seq"',
      'SELECT max("id")::text AS v FROM "app"."w"',
      'SELECT setval($1::regclass, $2::bigint, true)::text AS v',
      'SELECT last_value::text AS last, is_called::text AS called FROM "Odd ""s"""."Line seq"',
      'SELECT max("Key")::text AS v FROM "Odd ""s"""."Line ""t"""',
      'SELECT last_value::text AS last, is_called::text AS called FROM "app"."down_seq"',
      'SELECT min("n")::text AS v FROM "app"."down"',
      'SELECT setval($1::regclass, $2::bigint, true)::text AS v',
      'SELECT last_value::text AS last, is_called::text AS called FROM "app"."empty_seq"',
      'SELECT max("id")::text AS v FROM "app"."empty"',
    ]);
    expect(sent.filter((s) => s.sql === PG_SEQUENCES_SQL.setval).map((s) => s.values)).toEqual([
      ['"app"."w_id_seq"', '4200'],
      ['"app"."down_seq"', '-40'],
    ]);
    expect(r).toEqual({
      changed: [
        { name: 'app.w_id_seq', was: 1n, to: 4200n },
        { name: 'app.down_seq', was: -6n, to: -40n },
      ],
      unchanged: 2,
      unowned: ['app.free', 'app.txt_seq (non-integer app.notes.code)'],
      partial: [],
      failed: [],
    });
    expect(describeSequenceReport(r)).toBe(
      'sequences: 2 re-synchronised (app.w_id_seq 1 → 4200, app.down_seq -6 → -40), 2 already past their columns ' +
        'or empty, 2 with no integer column to read back (not owned by one, no DEFAULT nextval() of it), not ' +
        're-synchronised: app.free, app.txt_seq (non-integer app.notes.code)',
    );
  });

  it('takes the furthest value of every column a sequence gives its values to; names the uses it cannot read', async () => {
    const { c, sent } = scripted((sql) => {
      if (sql === PG_SEQUENCES_SQL.list)
        return [
          // Shared by two tables through their DEFAULTs, and by a text column's expression default.
          seqRow('app', 'shared', '1', ['app', 'a', 'k', true]),
          seqRow('app', 'shared', '1', ['app', 'b', 'k', true]),
          seqRow('app', 'shared', '1', ['app', 'c', 'code', false, false]),
          // Owned by a column whose default is an expression: the query gives the column once, plain (it owns it).
          seqRow('app', 'odd', '1', ['app', 'd', 'n', true, true]),
          // Only an integer column's expression default uses it: nothing to read back.
          seqRow('app', 'expr', '1', ['app', 'e', 'n', true, false]),
          // Descending, shared: the furthest value is the smallest.
          seqRow('app', 'down', '-1', ['app', 'f', 'n', true]),
          seqRow('app', 'down', '-1', ['app', 'g', 'n', true]),
        ];
      if (sql.includes('last_value')) return [{ last: '5', called: 'true' }];
      if (sql.includes('FROM "app"."a"')) return [{ v: '70' }];
      if (sql.includes('FROM "app"."b"')) return [{ v: '90' }];
      if (sql.includes('FROM "app"."d"')) return [{ v: '3' }];
      if (sql.includes('FROM "app"."f"')) return [{ v: null }];
      if (sql.includes('FROM "app"."g"')) return [{ v: '-30' }];
      if (sql === PG_SEQUENCES_SQL.setval) return [{ v: '0' }];
      throw new Error(`unexpected statement: ${sql}`);
    });
    const r = await resync(c);
    expect(sent.filter((s) => s.sql.startsWith('SELECT m')).map((s) => s.sql)).toEqual([
      'SELECT max("k")::text AS v FROM "app"."a"',
      'SELECT max("k")::text AS v FROM "app"."b"',
      'SELECT max("n")::text AS v FROM "app"."d"',
      'SELECT min("n")::text AS v FROM "app"."f"',
      'SELECT min("n")::text AS v FROM "app"."g"',
    ]);
    expect(sent.filter((s) => s.sql === PG_SEQUENCES_SQL.setval).map((s) => s.values)).toEqual([
      ['"app"."shared"', '90'],
      ['"app"."down"', '-30'],
    ]);
    expect(r).toEqual({
      changed: [
        { name: 'app.shared', was: 6n, to: 90n },
        { name: 'app.down', was: 4n, to: -30n },
      ],
      unchanged: 1,
      unowned: ['app.expr (expression default of app.e.n)'],
      partial: ['app.shared (non-integer app.c.code)'],
      failed: [],
    });
    expect(describeSequenceReport(r)).toMatch(
      /, 1 with no integer column .*: app\.expr \(expression default of app\.e\.n\), 1 also used where not read back: app\.shared \(non-integer app\.c\.code\)$/,
    );
  });

  it('reports a sequence it may not read and goes on with the others', async () => {
    const { c, sent } = scripted((sql) => {
      if (sql === PG_SEQUENCES_SQL.list)
        return [
          seqRow('app', 'a_seq', '1', ['app', 'a', 'id', true]),
          seqRow('app', 'b_seq', '1', ['app', 'b', 'id', true]),
        ];
      if (sql.includes('"app"."a_seq"'))
        throw Object.assign(new Error('permission denied for sequence a_seq'), { severity: 'ERROR', code: '42501' });
      if (sql.includes('FROM "app"."b_seq"')) return [{ last: '3', called: 'true' }];
      if (sql.includes('FROM "app"."b"')) return [{ v: '7' }];
      return [{ v: '7' }];
    });
    const r = await resync(c);
    expect(r.changed).toEqual([{ name: 'app.b_seq', was: 4n, to: 7n }]);
    expect(r.failed).toEqual([expect.stringMatching(/^app\.a_seq: .*permission denied for sequence a_seq/)]);
    expect(sent.filter((s) => s.sql === PG_SEQUENCES_SQL.setval).map((s) => s.values)).toEqual([
      ['"app"."b_seq"', '7'],
    ]);
    expect(describeSequenceReport(r)).toMatch(/1 re-synchronised .*, 1 failed: app\.a_seq: /);
  });

  it('says so when the database has no sequence', async () => {
    const { c } = scripted(() => []);
    const r = await resync(c);
    expect(describeSequenceReport(r)).toBe('sequences: none');
  });

  it('reports a column value beyond the bounds without setting it', async () => {
    const { c, sent } = scripted((sql) => {
      if (sql === PG_SEQUENCES_SQL.list) return [{ ...seqRow('app', 's', '1', ['app', 't', 'id', true]), hi: '32767' }];
      if (sql.includes('last_value')) return [{ last: '1', called: 'false' }];
      return [{ v: '40000' }];
    });
    const r = await resync(c);
    expect(r.failed).toEqual(["app.s: its columns hold 40000, beyond the sequence's bounds 1..32767"]);
    expect(sent.some((s) => s.sql === PG_SEQUENCES_SQL.setval)).toBe(false);
  });
});
