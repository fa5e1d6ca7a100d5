import { describe, expect, it } from 'vitest';
import { expandMoves, rewriteImports } from './move-module.ts';

describe('move-module', () => {
  it('expands a folder move over the tracked files', () => {
    const m = expandMoves(['cli/run/=node/', 'cli/log.ts=core/log.ts'], ['cli/run/a.ts', 'cli/run/x/b.ts', 'cli/c.ts']);
    expect([...m]).toEqual([
      ['cli/run/a.ts', 'node/a.ts'],
      ['cli/run/x/b.ts', 'node/x/b.ts'],
      ['cli/log.ts', 'core/log.ts'],
    ]);
  });

  it("rewrites importers of a moved file and a moved file's own imports", () => {
    const moves = new Map([['record/errors.ts', 'core/errors.ts']]);
    const importer = "import { A } from '../../record/errors.ts';\nimport { B } from './b.ts';\n";
    expect(rewriteImports(importer, 'capture/mysql/x.ts', 'capture/mysql/x.ts', moves)).toBe(
      "import { A } from '../../core/errors.ts';\nimport { B } from './b.ts';\n",
    );
    const moved = "import { P } from './position.ts';\nconst l = await import('../cli/log.ts');\n";
    expect(rewriteImports(moved, 'record/errors.ts', 'core/errors.ts', moves)).toBe(
      "import { P } from '../record/position.ts';\nconst l = await import('../cli/log.ts');\n",
    );
  });
});
