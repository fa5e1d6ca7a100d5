/** `tidemark run`: one node process until stopped; the runtime (roles per site, the loops) is node/supervisor.ts. */
import { type NodeOptions, runNode } from '../../node/supervisor.ts';
import type { CommandContext } from './context.ts';

export type { RunPart } from '../../node/supervisor.ts';

export interface RunOptions extends CommandContext, Omit<NodeOptions, keyof CommandContext> {}

/** Runs until `signal` aborts (returns 0 after a clean stop) or a non-retriable error is thrown. */
export function runCommand(o: RunOptions): Promise<number> {
  return runNode(o);
}
