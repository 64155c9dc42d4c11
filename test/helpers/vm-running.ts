// Test helper: watches that a VM keeps running while a live merge works on its disk: query-status polled on the test's
// own monitor, and every event that says the VM or its disk stopped (STOP, BLOCK_IO_ERROR) recorded.
import type { QmpClient } from '../../src/qemu/qmp-client.js';
import { queryStatus } from '../../src/live/index.js';
import { sleep } from './wait.js';

/** Events that mean the guest was stopped or saw an I/O error. */
const STOPPING = new Set(['STOP', 'BLOCK_IO_ERROR']);

/** What the watch saw. */
export interface RunningRecord {
  /** Every status query-status answered, in order (each distinct run of the same status once). */
  statuses: string[];
  /** How many times query-status was asked. */
  polls: number;
  /** The stopping events, by name. */
  stops: string[];
}

/** A running watch. */
export interface RunningWatch {
  /** Stops polling and returns what was seen. */
  stop(): Promise<RunningRecord>;
}

/** Polls query-status every pollMs and records stopping events until stop() is called. */
export function watchRunning(qmp: QmpClient, pollMs = 100): RunningWatch {
  const record: RunningRecord = { statuses: [], polls: 0, stops: [] };
  const unsubscribe = qmp.onEvent((event) => {
    if (STOPPING.has(event.event)) record.stops.push(event.event);
  });
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const { status } = await queryStatus(qmp);
      record.polls += 1;
      if (record.statuses[record.statuses.length - 1] !== status) record.statuses.push(status);
      await sleep(pollMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      unsubscribe();
      return record;
    },
  };
}
