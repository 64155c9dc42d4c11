// Job ids as an engine sees them: vdsm's are UUIDs. A merge that the command line started (journal id cli-PID-MS) and
// that the agent's start-up recovery finishes is shown under a UUID derived from that id, the same on every start.
import { createHash } from 'node:crypto';

/** The id that `volmerge merge` gives its journal: cli-<pid>-<milliseconds since the epoch>. */
export const CLI_JOB_ID = /^cli-[0-9]{1,10}-[0-9]{1,16}$/;

/** The UUID namespace of command-line job ids (RFC 4122 name-based UUIDs, version 5). */
const CLI_JOB_NAMESPACE = Buffer.from('6f1d2c9e4b3a4e0f9a7c5d8b2e1f0a3c', 'hex');

/** Whether an id is a command-line merge's journal id. */
export function isCliJobId(id: string): boolean {
  return CLI_JOB_ID.test(id);
}

/** The UUID (version 5, SHA-1 of namespace and name) under which the agent shows a command-line merge's job. */
export function uuidForCliJobId(cliJobId: string): string {
  const bytes = createHash('sha1').update(CLI_JOB_NAMESPACE).update(cliJobId, 'utf8').digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The id a job is known by in the agent's table: a UUID as given, a command-line journal id turned into its UUID. */
export function tableJobId(id: string): string {
  return isCliJobId(id) ? uuidForCliJobId(id) : id;
}
