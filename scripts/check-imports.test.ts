import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkImports, importsOf, listTsFiles } from './check-imports.ts';

const root = join(import.meta.dirname, '..');
const tree = () => new Map(listTsFiles(root).map((f) => [f, readFileSync(join(root, f), 'utf8')] as const));
/** "rule file" of every violation in the tree with `added` files (path → text) added, sorted. */
const rulesWith = (added: Record<string, string>) =>
  checkImports(new Map([...tree(), ...Object.entries(added)]))
    .map((v) => `${v.rule} ${v.file}`)
    .sort();

describe('check-imports', () => {
  it('passes on the tree', () => {
    expect(checkImports(tree()).map((v) => v.message)).toEqual([]);
  });

  it('fails on a deliberately added upward import (core/ importing config/)', () => {
    const files = tree();
    files.set('core/errors.ts', `import { loadConfig } from '../config/config.ts';\n${files.get('core/errors.ts')}`);
    const v = checkImports(files);
    expect(v.map((x) => x.rule)).toEqual(['up', 'cycle']); // config/ imports core/: the new edge closes a cycle too
    expect(v[0]).toMatchObject({ file: 'core/errors.ts', target: 'config/config.ts', rule: 'up' });
    expect(v[0]?.message).toContain('config/ (floor 9) is above core/ (floor 0)');
  });

  it('fails on an import past the journal face, a sibling import and a new folder cycle', () => {
    const files = tree();
    files.set('failover/x.ts', "import { JournalWriter } from '../journal/writer.ts';\n");
    files.set('capture/mysql/y.ts', "import type { MysqlEndpoint } from '../../apply/mysql/session.ts';\n");
    // record/ ↔ record/sub: both floor 1, so only the cycle rule catches it.
    files.set('record/sub/a.ts', "export { b } from '../b.ts';\n");
    files.set('record/b.ts', "import { a } from './sub/a.ts';\nexport const b = a;\n");
    const rules = checkImports(files).map((v) => `${v.rule} ${v.file}`);
    expect(rules.sort()).toEqual(['cycle record', 'face failover/x.ts', 'sideways capture/mysql/y.ts']);
  });

  it('fails when the runtime (node/) reaches an engine past the seam', () => {
    const files = tree();
    files.set(
      'node/x.ts',
      "import { openSession } from '../mysql/session.ts';\nimport { m } from '../apply/mysql/applier.ts';\n",
    );
    files.set('node/y.ts', "import { targetAdapter } from '../config/engines.ts';\n");
    expect(checkImports(files).map((v) => `${v.rule} ${v.target}`)).toEqual([
      'seam mysql/session.ts',
      'seam apply/mysql/applier.ts',
    ]);
  });

  it('keeps the transports apart, under the neutral ship/ core, behind their faces', () => {
    const rules = rulesWith({
      'ship/kafka/x.ts': "import { startShipper } from '../tcp/index.ts';\n",
      'ship/y.ts': "import { startRedisShipper } from './redis/index.ts';\n",
      'node/z.ts': "import { startKafkaShipper } from '../ship/kafka/shipper.ts';\n",
      'ship/redis/w.ts': "import { SessionLoop } from '../session.ts';\n",
    });
    // ship/y.ts → ship/redis → ship/session.ts closes a folder cycle too.
    expect(rules).toEqual(['cycle ship', 'face node/z.ts', 'sideways ship/kafka/x.ts', 'up ship/y.ts']);
  });

  it('lets unit tests reach inside a face and use test fixtures, but not import up', () => {
    const files = new Map([
      ['record/a.test.ts', "import { prng } from '../test/fixtures/prng.ts';\n"],
      ['ship/tcp/b.test.ts', "import { JournalWriter } from '../../journal/writer.ts';\n"],
      ['journal/index.ts', "export { JournalWriter } from './writer.ts';\n"],
      ['core/c.test.ts', "import { x } from '../ship/tcp/index.ts';\n"],
    ]);
    expect(checkImports(files).map((v) => `${v.rule} ${v.file}`)).toEqual(['up core/c.test.ts']);
  });

  it('reads static, multi-line, side-effect and dynamic imports and re-exports, not package imports', () => {
    const text = [
      "import { a } from './a.ts';",
      'import {',
      '  b,',
      '  type C,',
      "} from '../b.ts';",
      "export { d } from './d.ts';",
      "import './e.ts';",
      "const f = await import('./f.ts');",
      "import { z } from 'zod';",
    ].join('\n');
    expect(importsOf(text).sort()).toEqual(['../b.ts', './a.ts', './d.ts', './e.ts', './f.ts']);
  });
});
