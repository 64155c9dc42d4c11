// Test-only fault injection: VOLMERGE_CRASH_AT=STEP:before|after kills this process there; inert unless set.

/** Kills the process with SIGKILL when VOLMERGE_CRASH_AT names this step boundary. */
export function crashPoint(step: string, when: 'before' | 'after'): void {
  const target = process.env.VOLMERGE_CRASH_AT;
  if (!target || target !== `${step}:${when}`) return;
  process.kill(process.pid, 'SIGKILL');
}
