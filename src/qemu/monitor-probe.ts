// Whether a VM answers on its QMP monitor, for callers that only need to know (not to talk to it): connect, read the
// greeting, close. A socket that refuses or is gone means the VM is gone; any other failure (another client holds the
// monitor, a greeting that does not come) means a VM is there but cannot be driven now.
import { VolmergeError } from '../errors.js';
import { QmpClient } from './qmp-client.js';

/** How long a probe waits for the monitor's greeting. */
const GREETING_MS = 3000;

/** What a probe of a monitor found: it answers, a VM is there but the monitor is not ours now, or no VM is there. */
export type MonitorState = { state: 'answers' } | { state: 'busy' | 'gone'; reason: string };

/** Connects to the monitor at socket and closes it again; says whether it answered, and why not. */
export async function probeMonitor(socket: string): Promise<MonitorState> {
  try {
    (await QmpClient.connect(socket, { greetingTimeoutMs: GREETING_MS })).close();
    return { state: 'answers' };
  } catch (error) {
    const reason = (error as Error).message;
    return { state: error instanceof VolmergeError && error.code === 'not-found' ? 'gone' : 'busy', reason };
  }
}
