/** What rewind/undo on the source ask (rollback/server.ts SourceProbe): the source's position, capture's reach. */
import { readSource } from '../../capture/mysql/read-source.ts';
import type { Config } from '../../config/config.ts';
import { captureReach } from '../../node/capture-state.ts';
import type { SourceProbe } from '../../rollback/server.ts';

export function sourceProbe(config: Config): SourceProbe {
  return { readSource: () => readSource(config.source), captureReach };
}
