/**
 * `tidemark backup …` through main() with the real commands, a directory store and a stand-in stream command
 * (sh + cat of a synthetic mbstream): run seals a full then an incremental, list/show/star/unstar/expire answer
 * from the store, and usage mistakes (no backup section, unknown job, --pitr with --standalone, a bad config key)
 * end with exit 2 naming what to fix.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { silentLogger } from '../core/log.ts';
import { fileChunks } from '../test/fixtures/mbstream-kit.ts';
import { main } from './main.ts';

let dir: string;
let cfg: string;

function streamFile(name: string, type: string, from: number, to: number): string {
  const cp = `backup_type = ${type}\nfrom_lsn = ${from}\nto_lsn = ${to}\nlast_lsn = ${to}\n`;
  const f = join(dir, name);
  writeFileSync(
    f,
    Buffer.concat([
      fileChunks('bk/t.ibd', randomBytes(200_000)),
      fileChunks('xtrabackup_checkpoints', Buffer.from(cp)),
    ]),
  );
  return f;
}

function writeConfig(name: string, backup: unknown): string {
  const f = join(dir, name);
  writeFileSync(
    f,
    stringify({
      source: { name: 'primary', user: 'bk', password: 'pw-secret', include: ['shop.*'] },
      journal: { dir: './journal' },
      targets: [{ name: 'a', user: 'apply' }],
      ...(backup === undefined ? {} : { backup }),
    }),
  );
  return f;
}

const backupSection = (command: string[]) => ({
  stores: [{ name: 'local', kind: 'dir', path: './store' }],
  encryption: { key_file: './master.key' },
  stream: { command, option_file: 'none', scratch_dir: './scratch' },
  orphan_grace_minutes: 0,
  jobs: [{ name: 'nightly', store: 'local', type: 'full', retention: { chains: 1 } }],
});

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { code: -1, stdout: '', stderr: '' };
  out.code = await main(
    argv,
    {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s) },
      env: {},
      signal: new AbortController().signal,
    },
    { createLogger: () => silentLogger },
  );
  return out;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tidemark-main-backup-'));
  writeFileSync(join(dir, 'master.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
  const full = streamFile('full.xb', 'full-backuped', 0, 700);
  cfg = writeConfig('tidemark.yaml', backupSection(['sh', '-c', `cat ${full}`, 'sh']));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tidemark backup', () => {
  it('run, list, show, star, unstar, expire', async () => {
    expect(JSON.parse((await cli(['backup', 'list', '--json', '-c', cfg])).stdout)).toEqual([]);
    const run = await cli(['backup', 'run', 'nightly', '-c', cfg]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/-nightly-full-[0-9a-f]{6}: full, parent -, lsn 0\.\.700, .* on 'local'/);
    const inc = streamFile('inc.xb', 'incremental', 700, 900);
    const incCfg = writeConfig('inc.yaml', backupSection(['sh', '-c', `cat ${inc}`, 'sh']));
    expect((await cli(['backup', 'run', 'nightly', '--type', 'incremental', '-c', incCfg])).code).toBe(0);

    const listed = JSON.parse((await cli(['backup', 'list', '--json', '-c', cfg])).stdout) as Array<
      Record<string, unknown>
    >;
    expect(listed.map((b) => [b['type'], b['lsn']])).toEqual([
      ['full', { from: '0', to: '700' }],
      ['incremental', { from: '700', to: '900' }],
    ]);
    const [full, incr] = listed as [Record<string, unknown>, Record<string, unknown>];
    expect(incr['parent']).toBe(full['id']);
    expect(incr['store']).toBe('local');

    const show = JSON.parse((await cli(['backup', 'show', String(incr['id']), '--json', '-c', cfg])).stdout);
    expect(show.restoreChain).toEqual([full['id'], incr['id']]);
    expect(show.pieces[0].key).toBe(`${incr['id']}/piece-000001`);

    const star = await cli(['backup', 'star', String(incr['id']), '--pitr', '--note', 'audit', '-c', cfg]);
    expect(star.stdout).toContain('starred (pitr), pinning 1 parent(s)');
    const human = (await cli(['backup', 'list', '-c', cfg])).stdout;
    expect(human.split('\n').filter((l) => l.startsWith('★'))).toHaveLength(1);
    expect((await cli(['backup', 'unstar', String(incr['id']), '-c', cfg])).stdout).toContain('unstarred');

    const dry = await cli(['backup', 'expire', 'nightly', '--dry-run', '-c', cfg]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('dry run: nothing deleted');
    expect(dry.stdout).toContain(`keep    ${String(incr['id'])}`);
  });

  it('a missing backup is a runtime error naming the id', async () => {
    const r = await cli(['backup', 'show', '20200101T000000Z-nightly-full-000000', '-c', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no backup '20200101T000000Z-nightly-full-000000' in any store/);
  });

  it('usage mistakes exit 2 and say what to fix', async () => {
    const none = writeConfig('none.yaml', undefined);
    expect(await cli(['backup', 'list', '-c', none])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/has no backup section/),
    });
    expect(await cli(['backup', 'run', 'weekly', '-c', cfg])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/backup job 'weekly'.*has: nightly/),
    });
    expect(await cli(['backup', 'star', 'x', '--pitr', '--standalone', '-c', cfg])).toMatchObject({ code: 2 });
    expect(await cli(['backup', 'run', 'nightly', '--type', 'log', '-c', cfg])).toMatchObject({ code: 2 });
    const bad = writeConfig('bad.yaml', {
      ...backupSection(['x']),
      jobs: [{ name: 'j', store: 'nowhere', type: 'full', retention: { chains: 0 } }],
      pipeline: { block_size: '4MiB', piece_size: '4MiB' },
    });
    const r = await cli(['backup', 'list', '-c', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/backup\.jobs\.0\.retention\.chains/);
    expect(r.stderr).toMatch(/backup\.pipeline\.piece_size: piece_size must be at least twice block_size/);
  });
});
