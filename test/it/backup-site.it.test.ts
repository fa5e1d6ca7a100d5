/**
 * Backups straight into another site's store (issue #13 scope 7, the remote-site half): the standby site's
 * `tidemark run --site dr1` serves its directory store (`backup.serve`) over the ship transport's mutual TLS;
 * the primary's `tidemark backup run` streams a full of a real MariaDB 10.11 into it (`kind: site` store):
 *   - the pieces and the manifest land in dr1's directory, each piece's SHA-256 equal to the manifest's, and
 *     `backup list` on the primary lists the backup through the link;
 *   - the link cut (a fault proxy closing every connection) mid-backup fails the run with nothing sealed, the
 *     next run succeeds, and `expire` (through the link) collects the cut run's pieces;
 *   - a site the store does not allow is refused with the reason.
 * MariaDB port 3835; ship receiver 7850, store server 7851.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCerts } from '../../ship/tcp/certs.ts';
import { FaultProxy } from '../fixtures/fault-proxy.ts';
import { admin, REPO_ROOT, ROOT_PASSWORD, startInstance, stopInstance } from '../fixtures/mariadb.ts';
import { exited, runCli, startRun } from '../fixtures/topology.ts';

const NAME = 'bk-site';
const PORT = 3835;
const SHIP_PORT = 7850;
const SERVE_PORT = 7851;
const instDir = resolve(process.env['TIDEMARK_RUN_DIR'] ?? resolve(REPO_ROOT, '.run'), 'mariadb', NAME);

let dir: string;
let conn: mysql.Connection;
let dr1: ChildProcess | undefined;
let proxy: FaultProxy;

interface Listed {
  id: string;
  pieces: Array<{ key: string; size: string; sha256: string }>;
}

function config(file: string, storeAddress: string, allow = 'primary'): string {
  const path = join(dir, file);
  writeFileSync(
    path,
    `source:
  name: src
  host: 127.0.0.1
  port: ${PORT}
  user: root
  password: ${ROOT_PASSWORD}
  include: ["bk.*"]
journal:
  dir: ./journal
site: primary
ship:
  certs_dir: ./certs
standbys:
  - name: dr1
    address: 127.0.0.1:${SHIP_PORT}
    journal_dir: ./dr1-journal
targets:
  - name: unused
    port: 3836
    user: root
log:
  level: warn
  file: ./${file}.log
backup:
  stores:
    - name: vault
      kind: dir
      path: ./dr1-store
      site: dr1
    - name: offsite
      kind: site
      site: dr1
      address: ${storeAddress}
    - name: local
      kind: dir
      path: ./primary-store
      site: primary
  serve:
    - site: dr1
      listen: 127.0.0.1:${SERVE_PORT}
      store: vault
      allow: [${allow}]
  encryption:
    key_file: ./master.key
  pipeline:
    block_size: 1MiB
    piece_size: 2MiB
  stream:
    option_file: only
    socket: ${join(instDir, 'mysqld.sock')}
    datadir: ${join(instDir, 'data')}
    scratch_dir: ./scratch
  orphan_grace_minutes: 0
  jobs:
    - name: nightly
      store: offsite
      type: full
    - name: here
      store: local
      type: full
  copies:
    - name: to-dr1
      from: local
      to: offsite
      jobs: [here]
`,
  );
  return path;
}

async function cli(args: string[], file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli([...args, '-c', file], { timeoutMs: 120_000 });
}

async function listening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function storeFiles(): string[] {
  const root = join(dir, 'dr1-store');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tidemark-bksite-it-'));
  writeFileSync(join(dir, 'master.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
  await makeCerts({ dir: join(dir, 'certs'), ca: 'bksite-ca', sites: ['primary', 'dr1', 'dr2'], ips: ['127.0.0.1'] });
  startInstance(NAME, PORT, { fresh: true });
  conn = await admin(PORT);
  await conn.query(
    'CREATE DATABASE bk; CREATE TABLE bk.r (id INT PRIMARY KEY, b VARBINARY(2000)) ENGINE=InnoDB;' +
      'INSERT INTO bk.r SELECT seq, RANDOM_BYTES(1024) FROM bk.seq_1_to_6000;',
  );
  proxy = await FaultProxy.start({ upstreamHost: '127.0.0.1', upstreamPort: SERVE_PORT });
  dr1 = startRun(config('dr1.yaml', `127.0.0.1:${SERVE_PORT}`), ['--site', 'dr1']);
  await listening(SERVE_PORT, 60_000);
}, 180_000);

afterAll(async () => {
  if (dr1 !== undefined) {
    dr1.kill('SIGTERM');
    await exited(dr1);
  }
  await proxy?.close();
  await conn?.end();
  stopInstance(NAME);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('backups into another site', () => {
  it("backup run streams a full into dr1's store over mutual TLS; list sees it; every piece hash matches", async () => {
    const cfg = config('primary.yaml', `127.0.0.1:${SERVE_PORT}`);
    const r = await cli(['backup', 'run', 'nightly'], cfg);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/-nightly-full-[0-9a-f]{6}: full, parent -/);
    const l = await cli(['backup', 'list', '--json'], cfg);
    expect(l.code, l.stderr).toBe(0);
    const listed = JSON.parse(l.stdout) as Listed[];
    expect(listed.length).toBe(1);
    const b = listed[0] as Listed;
    expect(b.pieces.length).toBeGreaterThan(2); // 2 MiB pieces of a ~6 MiB table plus the rest of the datadir
    expect(storeFiles()).toEqual([...b.pieces.map((p) => p.key), `${b.id}/manifest.json`].sort());
    for (const p of b.pieces) {
      const bytes = readFileSync(join(dir, 'dr1-store', p.key));
      expect(String(bytes.length)).toBe(p.size);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(p.sha256);
    }
  }, 180_000);

  it('a link cut mid-backup seals nothing; the next run succeeds; expire over the link collects the orphans', async () => {
    const cfg = config('cut.yaml', `127.0.0.1:${proxy.port}`);
    const before = new Set(storeFiles());
    const run = cli(['backup', 'run', 'nightly'], cfg);
    for (let i = 0; i < 300 && proxy.bytesForwarded < 3 << 20; i++) await new Promise((r) => setTimeout(r, 50));
    expect(proxy.bytesForwarded).toBeGreaterThanOrEqual(3 << 20); // at least one piece went out
    proxy.closeAll();
    const r = await run;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/site dr1|connection/);
    const orphans = storeFiles().filter((f) => !before.has(f));
    expect(orphans.length).toBeGreaterThan(0);
    expect(orphans.some((f) => f.endsWith('manifest.json'))).toBe(false);
    const again = await cli(['backup', 'run', 'nightly'], cfg);
    expect(again.code, again.stderr).toBe(0);
    await new Promise((res) => setTimeout(res, 1100));
    const ex = await cli(['backup', 'expire', 'nightly'], cfg);
    expect(ex.code, ex.stderr).toBe(0);
    const listed = JSON.parse((await cli(['backup', 'list', '--json'], cfg)).stdout) as Listed[];
    expect(listed.length).toBe(2);
    const expected = listed.flatMap((b) => [...b.pieces.map((p) => p.key), `${b.id}/manifest.json`]).sort();
    expect(storeFiles()).toEqual(expected);
  }, 240_000);

  it('a copy into the other site survives a link cut mid-transfer: the next copy resumes, verified by hash', async () => {
    const primary = config('primary.yaml', `127.0.0.1:${SERVE_PORT}`);
    const here = await cli(['backup', 'run', 'here'], primary);
    expect(here.code, here.stderr).toBe(0);
    const local = (
      JSON.parse((await cli(['backup', 'list', '--json', '--job', 'here'], primary)).stdout) as Listed[]
    )[0];
    expect(local?.pieces.length).toBeGreaterThan(3);
    const cfg = config('cut.yaml', `127.0.0.1:${proxy.port}`);
    const sent = proxy.bytesForwarded;
    const first = cli(['backup', 'copy', 'to-dr1', '--json'], cfg);
    for (let i = 0; i < 300 && proxy.bytesForwarded - sent < 5 << 20; i++) await new Promise((r) => setTimeout(r, 20));
    proxy.closeAll();
    const cut = await first;
    expect(cut.code, cut.stdout).not.toBe(0);
    const partial = storeFiles().filter((f) => f.startsWith(`${(local as Listed).id}/`));
    expect(partial.length).toBeGreaterThan(0); // some pieces made it
    expect(partial).not.toContain(`${(local as Listed).id}/manifest.json`);
    const again = await cli(['backup', 'copy', 'to-dr1', '--json'], cfg);
    expect(again.code, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout) as { copied: Array<{ id: string; pieces: number; copiedPieces: number }> };
    const c = report.copied.find((x) => x.id === (local as Listed).id);
    expect(c?.pieces).toBe(local?.pieces.length);
    expect(c?.copiedPieces).toBeLessThan(c?.pieces as number); // resumed: the pieces already there were kept
    for (const p of (local as Listed).pieces) {
      const bytes = readFileSync(join(dir, 'dr1-store', p.key));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(p.sha256);
    }
    expect(storeFiles()).toContain(`${(local as Listed).id}/manifest.json`);
  }, 240_000);

  it('a site the store does not allow is refused, naming it', async () => {
    const cfg = config('dr2.yaml', `127.0.0.1:${SERVE_PORT}`);
    // the same store, asked for by dr2 (its own certificate): the server's allow list names only primary
    const text = readFileSync(cfg, 'utf8').replace('site: primary', 'site: dr2');
    writeFileSync(cfg, text);
    const r = await cli(['backup', 'list'], cfg);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/site "dr2" may not use this store/);
  }, 60_000);
});
