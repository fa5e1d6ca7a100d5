/**
 * The built-in engines, registered with the engine registry (engine/registry.ts) when this module loads: MySQL
 * for `source.kind` and `targets[].kind` (also the kind of a section without `kind:`), PostgreSQL for `source.kind` and `targets[].kind`.
 * The config loader and the runtime look adapters up through here, so the built-ins are always registered when
 * they do.
 */
import { mysqlTarget } from '../apply/mysql/adapter.ts';
import { mysqlSource } from '../capture/mysql/adapter.ts';
import { postgresSource } from '../capture/postgres/adapter.ts';
import { postgresTarget } from '../apply/postgres/adapter.ts';
import { registerEngine } from '../engine/registry.ts';

registerEngine({ source: mysqlSource, target: mysqlTarget });
registerEngine({ source: postgresSource, target: postgresTarget });

export {
  DEFAULT_KIND,
  registerEngine,
  requireCapability,
  sourceAdapter,
  sourceAdapterOf,
  sourceKinds,
  targetAdapter,
  targetAdapterOf,
  targetKinds,
  unregisterEngine,
} from '../engine/registry.ts';
