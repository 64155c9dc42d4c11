// Runs virsh against one libvirt connection (argv arrays only, never a shell string, never `--wait`: SIGINT to a
// waiting virsh would abort the job) and turns its failures into errors that name the domain and what to do.
import { VolmergeError } from '../errors.js';
import { run, type CommandResult } from '../os/run.js';

/** Where the domain is: libvirt's URI (virsh's default when absent: qemu:///system as root) and the domain's name or UUID. */
export interface DomainRef {
  uri?: string | undefined;
  domain: string;
}

/** How long one virsh call may take (libvirt answers at once or not at all; a job's wait is a loop of calls). */
const VIRSH_TIMEOUT_MS = 120_000;

/** libvirt could not be reached (libvirtd down or restarting): a caller that waits may try again. */
export class LibvirtUnreachable extends VolmergeError {
  constructor(message: string, stderr: string) {
    super('not-found', message, { stderr });
  }
}

/** The URI as messages show it. */
export function describeUri(uri: string | undefined): string {
  return uri ?? 'the default libvirt connection';
}

/** The options that select the connection, for an argv. */
export function connectArgs(uri: string | undefined): string[] {
  return uri ? ['-c', uri] : [];
}

/** The first line of virsh's complaint, without its "error: " prefixes. */
function complaint(result: CommandResult): string {
  const lines = result.stderr
    .split('\n')
    .map((line) => line.replace(/^error:\s*/, '').trim())
    .filter((line) => line.length > 0);
  return lines.join('; ') || `virsh exited ${result.exitCode}`;
}

const UNREACHABLE = /failed to connect to the hypervisor|Failed to connect socket|Cannot recv data|Connection reset|End of file while reading|no connection driver available|Broken pipe|Cannot write data/i;

/** The error of a failed virsh call about ref's domain. */
export function virshError(ref: DomainRef, result: CommandResult, what: string): VolmergeError {
  const said = complaint(result);
  if (UNREACHABLE.test(result.stderr)) {
    return new LibvirtUnreachable(`domain ${ref.domain}: cannot reach libvirt at ${describeUri(ref.uri)} (${said}); is libvirtd running?`, result.stderr);
  }
  if (/Domain not found|failed to get domain/i.test(result.stderr)) {
    return new VolmergeError('not-found', `domain ${ref.domain}: libvirt at ${describeUri(ref.uri)} has no such domain (name or UUID); virsh list --all shows them`, {
      stderr: result.stderr,
    });
  }
  if (/domain is not running/i.test(result.stderr)) {
    return new VolmergeError('vm-gone', `domain ${ref.domain} is not running; a live merge needs it running (merge without --domain once it is shut off)`, {
      stderr: result.stderr,
    });
  }
  return new VolmergeError('qemu-failed', `domain ${ref.domain}: ${what} failed: ${said}`, { argv: result.argv, exitCode: result.exitCode, stderr: result.stderr });
}

/** Runs `virsh -c URI ARGS` and resolves with its result, whatever the exit code. */
export function virshRaw(uri: string | undefined, args: readonly string[]): Promise<CommandResult> {
  return run(['virsh', '-q', ...connectArgs(uri), ...args], { timeoutMs: VIRSH_TIMEOUT_MS });
}

/** Runs a virsh command about ref's domain; resolves with its stdout, throws virshError when it fails. */
export async function virsh(ref: DomainRef, args: readonly string[], what: string): Promise<string> {
  const result = await virshRaw(ref.uri, args);
  if (result.exitCode !== 0 || result.signal) throw virshError(ref, result, what);
  return result.stdout;
}
