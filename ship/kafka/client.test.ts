import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLIENT = fileURLToPath(new URL('./client.ts', import.meta.url));

// Node prints a TimeoutNegativeWarning once per process, so each case runs in its own: kafkajs's own request queue
// schedules its pending-request check as a connection does, with no throttle set — a negative delay
// (tulios/kafkajs#1751) — after `before`: a warning of another kind, or the same kind raised outside kafkajs.
function stderrOf(filter: boolean, before = ''): string {
  const script = `
    import { createRequire } from 'node:module';
    import { dropKafkajsTimeoutWarnings } from ${JSON.stringify(CLIENT)};
    if (${filter}) dropKafkajsTimeoutWarnings();
    ${before}
    const RequestQueue = createRequire(${JSON.stringify(CLIENT)})('kafkajs/src/network/requestQueue/index.js');
    const q = new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 1000, clientId: 't', broker: 'b', logger: {} });
    q.scheduleCheckPendingRequests();
    clearTimeout(q.throttleCheckTimeoutId);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr;
}

describe('dropKafkajsTimeoutWarnings', () => {
  it("drops kafkajs's negative-timeout warning, and only that one", () => {
    // Without the filter the warning is printed (so the test can fail).
    expect(stderrOf(false)).toMatch(/TimeoutNegativeWarning: -\d+ is a negative number/);
    expect(stderrOf(true)).not.toMatch(/Warning/);
    const others = stderrOf(
      true,
      "process.emitWarning('something else', 'TidemarkTestWarning'); setTimeout(() => undefined, -5);",
    );
    expect(others).toMatch(/TidemarkTestWarning: something else/);
    expect(others).toMatch(/TimeoutNegativeWarning: -5 is a negative number/);
  });
});
