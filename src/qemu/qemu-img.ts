// Runs qemu-img and turns a failed run into a VolmergeError that names the volume and the command.
import { run, type CommandResult, type RunOptions } from '../os/run.js';
import { VolmergeError, type ErrorCode } from '../errors.js';

/** The qemu-img binary; VOLMERGE_QEMU_IMG overrides it (tests wrap it to inject faults). */
export function qemuImgBinary(): string {
  return process.env.VOLMERGE_QEMU_IMG || 'qemu-img';
}

/** Runs `qemu-img ARGS`; resolves with the result whatever the exit code. */
export async function runQemuImg(args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  try {
    return await run([qemuImgBinary(), ...args], options);
  } catch (error) {
    throw new VolmergeError('qemu-failed', `cannot run qemu-img: ${(error as Error).message}; install qemu-utils`);
  }
}

/** Classifies qemu-img's complaint about opening an image. */
export function classifyOpenFailure(stderr: string): ErrorCode {
  if (/No such file or directory/i.test(stderr)) return 'not-found';
  if (/not in qcow2 format|Image is not in qcow2|Unknown driver|is not a valid format/i.test(stderr)) return 'not-qcow2';
  if (/Failed to get .*lock|Is another process using the image/i.test(stderr)) return 'busy';
  if (/No space left on device/i.test(stderr)) return 'no-space';
  return 'qemu-failed';
}

/** The first meaningful line of qemu-img's stderr, without the "qemu-img: " prefix. */
export function firstErrorLine(stderr: string): string {
  const line = stderr.split(/\r?\n/).map((l) => l.trim()).find((l) => l.length > 0) ?? '';
  return line.replace(/^qemu-img:\s*/, '') || 'no message';
}

/** What a 'busy' refusal adds: a cold merge needs the chain unused, and a running VM's disk is merged live. */
export const BUSY_HINT =
  ' (is a VM or another process using it? a cold merge needs it unused; to merge the disk of a running VM, add --domain NAME for a libvirt domain, or --qmp SOCKET with its QMP monitor socket)';

/** Throws a VolmergeError for a qemu-img run that exited non-zero, naming the volume. */
export function failIfExited(result: CommandResult, volume: string, action: string): void {
  if (result.exitCode === 0 && !result.signal) return;
  const code = result.signal ? 'aborted' : classifyOpenFailure(result.stderr);
  const hint = code === 'busy' ? BUSY_HINT : '';
  const how = result.signal ? `was stopped by ${result.signal}` : `failed (exit ${result.exitCode}): ${firstErrorLine(result.stderr)}`;
  throw new VolmergeError(code, `${volume}: qemu-img ${action} ${how}${hint}`, {
    argv: result.argv,
    exitCode: result.exitCode,
    stderr: result.stderr,
  });
}

/** Throws 'verify-failed' when qemu-img check reported corruption (exit 2). */
export function failIfCorrupt(result: CommandResult, path: string): void {
  if (result.exitCode !== 2) return;
  throw new VolmergeError('verify-failed', `${path}: qemu-img check found corruption; do not use this volume before repairing it`, {
    argv: result.argv,
    exitCode: 2,
    stderr: result.stderr,
  });
}
