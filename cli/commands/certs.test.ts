import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportError } from './exit.ts';
import { certsCommand } from './certs.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tidemark-certs-cmd-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function sink(): { write(s: string): void; text(): string } {
  let out = '';
  return {
    write: (s: string) => {
      out += s;
    },
    text: () => out,
  };
}

describe('tidemark certs', () => {
  it('makes the CA once and says what to hand each site', async () => {
    const dir = join(root, 'a');
    const out = sink();
    expect(
      await certsCommand({ dir, ca: 'acme', sites: ['dc1', 'dc2'], ips: ['10.0.0.2'], force: false, stdout: out }),
    ).toBe(0);
    expect(out.text()).toMatch(/^made CA "acme": .*ca.crt, .*ca.key \(valid until /);
    expect(out.text()).toMatch(/made site "dc2": .*dc2.crt, .*dc2.key \(names dc2, 10.0.0.2; valid until /);
    expect(out.text()).toMatch(/next: give each site ca.crt/);

    const again = sink();
    await certsCommand({ dir, ca: 'acme', sites: ['dc3'], hosts: ['dc3.example.com'], force: false, stdout: again });
    expect(again.text()).toMatch(/^using the existing CA "acme"/);
    expect(again.text()).toMatch(/names dc3, dc3.example.com;/);
    expect((await readdir(dir)).length).toBe(8);
  });

  it('ends with exit code 2 and one line for bad usage', async () => {
    const dir = join(root, 'b');
    await certsCommand({ dir, ca: 'acme', sites: ['dc1'], force: false, stdout: sink() });
    const err = await certsCommand({ dir, ca: 'other', sites: ['dc2'], force: false, stdout: sink() }).catch(
      (e: unknown) => e,
    );
    const report = reportError(err, { debug: false });
    expect(report.exitCode).toBe(2);
    expect(report.text).toMatch(/already holds a CA named "acme", not "other"; use --force/);
    expect(report.text.trim().split('\n')).toHaveLength(1);
  });
});
