/**
 * The toy engine as the contract test takes it (test/engine/contract.ts): a SQLite source with a trigger-fed
 * change log, SQLite targets, and a workload of inserts, updates (a counter row every transaction touches, values
 * above 2^53) and deletes. `dropChange` makes the lossy variant whose capture loses one change.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ContractEngine } from '../contract.ts';
import { createSource, openDb, transaction } from './db.ts';
import { type DropChange, toySource } from './source.ts';
import { appliedSeqs, toyTarget } from './target.ts';

const TABLES = [
  'items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER)',
  'counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, note TEXT)',
];

/** Source transaction `n` of the workload. */
export function workload(n: number): string[] {
  const s = [
    `INSERT INTO items (id, name, qty) VALUES (${n}, 'item ${n} ''q''', ${2n ** 60n + BigInt(n)})`,
    `INSERT INTO counters (id, n, note) VALUES (${n % 3}, 1, NULL) ON CONFLICT (id) DO UPDATE SET n = n + 1, note = 'tx ${n}'`,
  ];
  if (n > 3) s.push(`UPDATE items SET qty = qty + ${n}, name = name || '+' WHERE id = ${n - 3}`);
  if (n % 5 === 0) s.push(`DELETE FROM items WHERE id = ${n - 4}`);
  return s;
}

export function toyEngine(kind = 'toy', o: { dropChange?: DropChange } = {}): ContractEngine {
  return {
    source: toySource(kind, o),
    target: toyTarget(kind),
    async createSource(dir) {
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'source.db');
      createSource(file, TABLES);
      return { file, poll_ms: 20 };
    },
    async write(source, n) {
      const db = openDb(String(source['file']));
      try {
        transaction(db, workload(n));
      } finally {
        db.close();
      }
    },
    targetKeys: (dir, name) => ({ file: join(dir, `target-${name}.db`) }),
    appliedSeqs: async (t) => appliedSeqs(String(t['file'])),
  };
}
