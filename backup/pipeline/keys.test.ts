import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { MasterKey, newDataKey, parseMasterKey, unwrapDataKey, wrapDataKey } from './keys.ts';
import { loadMasterKey } from './master-key.ts';

const raw = randomBytes(32);
const master = new MasterKey(raw, 'test');

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof TidemarkError ? err.code : `not a TidemarkError: ${String(err)}`;
  }
  return 'nothing thrown';
}

describe('master key', () => {
  it('parses 64 hex digits, base64 and 32 raw bytes to the same key id; refuses anything else', () => {
    const hex = parseMasterKey(Buffer.from(`${raw.toString('hex')}\n`), 'hex');
    const b64 = parseMasterKey(Buffer.from(`  ${raw.toString('base64')}  `), 'b64');
    const bin = parseMasterKey(raw, 'bin');
    expect(new Set([hex.id, b64.id, bin.id, master.id]).size).toBe(1);
    expect(master.id).toMatch(/^[0-9a-f]{32}$/);
    expect(master.id).not.toBe(new MasterKey(randomBytes(32), 'other').id);
    for (const bad of ['', 'abc', raw.toString('hex').slice(2), randomBytes(16).toString('base64')]) {
      expect(
        code(() => parseMasterKey(Buffer.from(bad), 'bad')),
        bad,
      ).toBe('CONFIG');
    }
  });

  it('never shows the key bytes in JSON or inspect', () => {
    const shown = `${JSON.stringify({ master })} ${inspect(master, { depth: 5, showHidden: true })}`;
    expect(shown).toContain(master.id);
    for (const form of [raw.toString('hex'), raw.toString('base64'), master.wrappingKey().toString('hex')]) {
      expect(shown).not.toContain(form);
    }
    expect(shown).not.toMatch(/<Buffer|Uint8Array/);
  });

  it('loads from a file (only when not readable by others) or an environment variable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tm-mkey-'));
    try {
      const f = join(dir, 'backup.key');
      await writeFile(f, raw.toString('hex'), { mode: 0o600 });
      expect((await loadMasterKey({ file: f })).id).toBe(master.id);
      await chmod(f, 0o644);
      await expect(loadMasterKey({ file: f })).rejects.toThrow(/chmod 600/);
      await expect(loadMasterKey({ file: join(dir, 'none') })).rejects.toThrow(/cannot be read/);
      expect((await loadMasterKey({ env: 'K' }, { K: raw.toString('base64') })).id).toBe(master.id);
      await expect(loadMasterKey({ env: 'K' }, {})).rejects.toThrow(/'K' is not set/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('data key wrapping', () => {
  it('unwraps with the master key it was wrapped under', () => {
    const dk = newDataKey();
    const h = wrapDataKey(master, dk, 'b1');
    expect(h).toMatchObject({ version: 1, algorithm: 'zstd+aes-256-gcm', keyId: master.id });
    expect(unwrapDataKey(master, h, 'b1').equals(dk)).toBe(true);
    expect(JSON.stringify(h)).not.toContain(dk.toString('base64'));
  });

  it('refuses a wrong master key by id, a forged id by the tag, and a header of another backup', () => {
    const h = wrapDataKey(master, newDataKey(), 'b1');
    const wrong = new MasterKey(randomBytes(32), 'wrong');
    expect(code(() => unwrapDataKey(wrong, h, 'b1'))).toBe('BACKUP_KEY');
    expect(() => unwrapDataKey(wrong, h, 'b1')).toThrow(new RegExp(`'${h.keyId}', not '${wrong.id}'`));
    expect(code(() => unwrapDataKey(wrong, { ...h, keyId: wrong.id }, 'b1'))).toBe('BACKUP_KEY');
    expect(() => unwrapDataKey(wrong, { ...h, keyId: wrong.id }, 'b1')).toThrow(/tag mismatch/);
    expect(code(() => unwrapDataKey(master, h, 'b2'))).toBe('BACKUP_KEY');
    const w = Buffer.from(h.wrappedKey, 'base64');
    w[20] = (w[20] as number) ^ 1;
    expect(code(() => unwrapDataKey(master, { ...h, wrappedKey: w.toString('base64') }, 'b1'))).toBe('BACKUP_KEY');
  });
});
