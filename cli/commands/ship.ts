/**
 * `tidemark ship pause|resume STANDBY`: stops or restarts shipping to one standby. The running primary-site
 * process sees the change within a second (ship-loop.ts). While paused the standby's cursor keeps the journal it
 * still needs (up to ship.cap_bytes: see ship/SITES.md), so a resumed standby continues where it stopped.
 */
import { isPaused, setPaused } from '../../node/ship-state.ts';
import type { CommandContext } from './context.ts';

export interface ShipOptions extends CommandContext {
  readonly action: 'pause' | 'resume';
  /** A configured standby (checked by cli/main.ts). */
  readonly standby: string;
}

export async function shipCommand(o: ShipOptions): Promise<number> {
  const dir = o.config.journal.dir;
  const was = await isPaused(dir, o.standby);
  await setPaused(dir, o.standby, o.action === 'pause', 'tidemark ship pause');
  const now = o.action === 'pause' ? 'paused' : 'resumed';
  const note = was === (o.action === 'pause') ? ` (it was already ${was ? 'paused' : 'running'})` : '';
  o.stdout.write(`standby ${o.standby}: shipping ${now}${note}\n`);
  o.log.info({ standby: o.standby, action: o.action }, `ship: standby ${o.standby} ${now}`);
  return 0;
}
