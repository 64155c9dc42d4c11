// Start-up recovery of a live merge: its block job goes on inside the VM while no volmerge runs, so an agent that starts
// re-attaches to it through the VM's monitor when that monitor answers, and otherwise leaves it to an operator with the
// command that finishes it (live while the VM runs, cold once it is gone).
import type { Journal } from '../../engine/journal.js';
import { probeMonitor } from '../../qemu/monitor-probe.js';

/** Whether the live job's VM answers on its monitor now: undefined when it does, else why not. */
export async function liveMonitorSilence(journal: Journal): Promise<string | undefined> {
  const socket = journal.request.qmp;
  if (!socket) return 'its journal names no QMP socket';
  const found = await probeMonitor(socket);
  return found.state === 'answers' ? undefined : found.reason;
}

/** The advice for a live job that start-up recovery cannot re-attach to. */
export function liveAdvice(journal: Journal, why: string): string {
  const { top, base, qmp } = journal.request;
  return (
    `a live merge run inside a VM whose monitor does not answer (${why}); while the VM runs, finish it with ` +
    `volmerge merge --top ${top} --base ${base} --qmp ${qmp ?? 'SOCKET'}; once the VM is gone, the same command without --qmp finishes it cold`
  );
}
