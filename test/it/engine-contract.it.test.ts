/**
 * The engine contract (engine/README.md) run with the toy engine (SQLite through node:sqlite, test/engine/toy/):
 * the real runtime captures, journals, ships over TCP (mutual TLS, port 7790) to a standby site and applies at
 * both sites; verify must say EQUAL and each transaction must be applied exactly once across a restart. Needs no
 * MariaDB. The lossy variant (one change dropped by its capture, plaintext on port 7791) must fail the contract:
 * verify reports the target DIFFERENT.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { loadConfig } from '../../config/config.ts';
import { unregisterEngine } from '../../config/engines.ts';
import { runNode } from '../../node/supervisor.ts';
import { runEngineContract } from '../engine/contract.ts';
import { toyEngine } from '../engine/toy/engine.ts';

const root = mkdtempSync(join(tmpdir(), 'tidemark-engine-contract-'));

afterAll(() => {
  unregisterEngine('toy');
  unregisterEngine('toy-lossy');
  rmSync(root, { recursive: true, force: true });
});

describe('engine contract: the toy engine through the real runtime', () => {
  it('captures, journals, ships over mutual TLS, applies at both sites exactly once across a restart, verifies EQUAL', async () => {
    const r = await runEngineContract(toyEngine('toy'), { dir: join(root, 'toy'), port: 7790, tls: true });
    expect(r.verify.targets.map((t) => t.name).sort()).toEqual(['far', 'near']);
    // 48 workload transactions after a baseline (2 table units + baseline-end): the journal holds all of them.
    expect(r.journalHeadSeq).toBeGreaterThan(48n);
  }, 300_000); // generous: a loaded CI machine runs two integration files at once

  it('fails when the capture drops one change: verify reports the targets DIFFERENT', async () => {
    // Transaction 20 is streamed while running (the baseline takes 1-12); its third change updates item 17,
    // which no later transaction touches, so only verify can notice that it is missing.
    const lossy = toyEngine('toy-lossy', { dropChange: { tx: 20n, index: 2 } });
    await expect(runEngineContract(lossy, { dir: join(root, 'lossy'), port: 7791, tls: false })).rejects.toThrow(
      /DIFFERENT/,
    );
  }, 180_000);

  it('refuses to resume a journal written from another engine, naming both', async () => {
    // The first test's journal holds "toy" positions; a source of kind "toy-lossy" writes "toy-lossy" ones.
    const dir = join(root, 'toy');
    const text = readFileSync(join(dir, 'tidemark.yaml'), 'utf8').replaceAll('kind: toy\n', 'kind: toy-lossy\n');
    const file = join(dir, 'other-engine.yaml');
    writeFileSync(file, text);
    const config = loadConfig(file);
    expect(config.source.kind).toBe('toy-lossy');
    const run = runNode({
      config,
      log: pino({ level: 'silent' }),
      signal: new AbortController().signal,
      only: 'capture',
    });
    await expect(run).rejects.toThrow(
      /holds positions of engine "toy", but source.kind "toy-lossy" writes "toy-lossy"/,
    );
  }, 60_000);
});
