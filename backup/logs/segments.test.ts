import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../catalog.ts';
import type { Manifest } from '../manifest.ts';
import { type EncryptionHeader, MasterKey } from '../pipeline/keys.ts';
import { readSealedBackup } from '../pipeline/reader.ts';
import { DirStore } from '../store/dir.ts';
import { parseHeader } from './events.ts';
import { FIXTURE, FIXTURE_FILE, fixtureEvents } from './fixtures/fixture.ts';
import { LogFollower } from './follower.ts';
import { logSegments, sealSegment, seqHoles } from './segments.ts';

const master = new MasterKey(randomBytes(32), 'test key');
let root: string;
let store: DirStore;
let catalog: Catalog;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tm-logsegs-'));
  store = await DirStore.open(root);
  catalog = new Catalog(':memory:', store.name);
});

afterEach(async () => {
  catalog.close();
  await store.close();
  await rm(root, { recursive: true, force: true });
});

async function plaintext(m: Manifest): Promise<Buffer> {
  const parts: Buffer[] = [];
  const r = readSealedBackup({
    store,
    backupId: m.id,
    master,
    encryption: m.encryption as unknown as EncryptionHeader,
    pieces: m.pieces,
  });
  for await (const b of r) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

describe('log segments in a store (the contract with point-in-time restore)', () => {
  it('seals segments as log backups whose pieces are the file bytes [startPos, endPos), seq in order', async () => {
    const f = new LogFollower({ file: FIXTURE_FILE, pos: 4n, gtidPos: new Map(), nextSeq: 1n });
    const events = fixtureEvents();
    events.forEach((ev, i) => {
      f.push(ev, 1_000 + i);
      if (i % 9 === 8) f.cut();
    });
    const segs = f.take();
    expect(segs.length).toBeGreaterThan(3);
    for (const s of segs) await sealSegment({ store, catalog, master, job: 'binlogs' }, s);

    const fresh = new Catalog(':memory:', store.name);
    await fresh.rebuild(store); // the store is the truth
    const stored = logSegments(fresh, 'binlogs');
    fresh.close();
    expect(stored.map((m) => m.log?.seq)).toEqual(segs.map((s) => s.seq));
    expect(seqHoles(stored)).toEqual([]);
    let whole = Buffer.alloc(0);
    for (const m of stored) {
      const log = m.log as NonNullable<Manifest['log']>;
      expect([m.type, m.job, m.parent, m.chain, m.lsn, m.binlog]).toEqual(['log', 'binlogs', null, m.id, null, null]);
      const bytes = await plaintext(m);
      expect(bytes).toEqual(FIXTURE.subarray(Number(log.startPos), Number(log.endPos)));
      expect(BigInt(whole.length)).toBe(log.startPos);
      whole = Buffer.concat([whole, bytes]);
      if (log.lastGtid !== null) expect(m.gtid).toBe(log.lastGtid); // one domain: the position is the last GTID
    }
    expect(whole).toEqual(FIXTURE);
    const first = stored[0]?.log as NonNullable<Manifest['log']>;
    expect(first.startPos).toBe(0n);
    // The first group (events 3-4: GTID, DDL query) gives the commit time, not the format description before it.
    expect(first.firstCommit.getTime()).toBe(parseHeader(events[4] as Buffer).timestamp * 1000);
    expect(first.firstGtid).toBe('0-3810-1');
  });

  it('seqHoles names every missing sequence number', async () => {
    const f = new LogFollower({ file: FIXTURE_FILE, pos: 4n, gtidPos: new Map(), nextSeq: 1n });
    for (const ev of fixtureEvents()) {
      f.push(ev, 1);
      f.cut();
    }
    const segs = f.take().slice(0, 6);
    for (const s of [segs[0], segs[1], segs[4], segs[5]])
      if (s) await sealSegment({ store, catalog, master, job: 'j' }, s);
    expect(seqHoles(logSegments(catalog, 'j'))).toEqual([3n, 4n]);
  });
});
