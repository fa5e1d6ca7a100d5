import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CursorStore } from '../journal/cursors.ts';
import { ShipCursor } from './ship-state.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('ShipCursor', () => {
  it('an ack that arrives while the cursor is being written is written by the next sync', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-shipcursor-'));
    dirs.push(dir);
    const store = new CursorStore(dir);
    const cursor = new ShipCursor(store, 'ship:dr1', 0n);
    const acked = { unitLsn: 5n };
    const round = () => cursor.sync(acked.unitLsn);

    const first = round();
    acked.unitLsn = 9n; // the last ack, during the first write's fsync
    await first;
    expect(await store.get('ship:dr1')).toBe(5n);
    await round();
    expect(await store.get('ship:dr1')).toBe(9n);
  });

  it('writes only what changed, unless forced (a cursor that was removed and is held again)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-shipcursor-'));
    dirs.push(dir);
    const store = new CursorStore(dir);
    const cursor = new ShipCursor(store, 'ship:dr1', 7n);
    await cursor.sync(7n);
    expect(await store.get('ship:dr1')).toBeNull();
    await cursor.sync(7n, true);
    expect(await store.get('ship:dr1')).toBe(7n);
    await store.remove('ship:dr1');
    await cursor.sync(7n, true);
    expect(await store.get('ship:dr1')).toBe(7n);
  });
});
