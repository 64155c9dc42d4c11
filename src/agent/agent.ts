// The host agent: a job table, its JSON-RPC methods and the listeners, started together and stopped cleanly.
import { mkdir } from 'node:fs/promises';
import { log } from '../log.js';
import { JobRegistry } from './registry.js';
import { readLv } from '../storage/lvm.js';
import { EventHub } from './events.js';
import { jobStatusView } from './job-view.js';
import { agentMethods } from './methods.js';
import { recoverIntoRegistry } from './recovery-hook.js';
import { handleBody } from './rpc.js';
import { serve, type TlsListen } from './server.js';
import type { LibvirtConnection } from './vm-merge.js';

/** How to run the agent (the CLI's options, parsed). */
export interface AgentOptions {
  socketPath: string;
  stateDir: string;
  fileDomains?: string;
  maxJobs: number;
  jobTtlSeconds: number;
  stopTimeoutSeconds: number;
  /** The TCP listener: TLS with client certificates (and a bearer token on top, when given). */
  tls?: TlsListen;
  maxBodyBytes?: number;
  /** Test-only commit rate limit (VOLMERGE_TEST_COMMIT_RATE). */
  commitRateLimit?: number;
  /** The folder of the VMs' QMP sockets, for VM.merge. */
  qmpDir?: string;
  /** libvirt's connection, for VM.merge through libvirt (--libvirt [URI]; uri absent: libvirt's default). */
  libvirt?: LibvirtConnection;
  /** How long a recovered job whose volumes could not be probed waits before the next probe (recovery's default: 30 s). */
  recoveryRetryMs?: number;
  version: string;
}

/** A running agent. */
export interface RunningAgent {
  tlsAddress?: { host: string; port: number };
  /** Stops listening, lets running merges finish (up to the stop timeout, then interrupts them), and resolves when all is quiet. */
  stop(reason: string): Promise<void>;
  /** Resolves once the agent has stopped. */
  stopped: Promise<void>;
}

/** Starts the agent and resolves once it serves. */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
  const events = new EventHub();
  const registry = new JobRegistry({
    maxJobs: options.maxJobs,
    finishedTtlMs: options.jobTtlSeconds * 1000,
    onTransition: (job) => {
      log.info(`job ${job.id} ${job.status}`, {
        job: job.id,
        status: job.status,
        ...(job.cliJobId ? { cliJobId: job.cliJobId } : {}),
        ...(job.step ? { step: job.step } : {}),
        ...(job.error ? { error: job.error } : {}),
      });
      events.publish(jobStatusView(job));
    },
  });

  // Before serving: merges that a crash left unfinished (state dir, shared VGs' job LVs) become jobs of this table.
  const recoveryStop = new AbortController();
  await recoverIntoRegistry({
    stateDir: options.stateDir,
    registry,
    signal: recoveryStop.signal,
    ...(options.commitRateLimit ? { commitRateLimit: options.commitRateLimit } : {}),
    ...(options.recoveryRetryMs !== undefined ? { retryDelayMs: options.recoveryRetryMs } : {}),
  });

  const methods = agentMethods({
    registry,
    stateDir: options.stateDir,
    version: options.version,
    readLv,
    ...(options.fileDomains ? { fileDomains: options.fileDomains } : {}),
    ...(options.qmpDir ? { qmpDir: options.qmpDir } : {}),
    ...(options.libvirt ? { libvirt: options.libvirt } : {}),
    ...(options.commitRateLimit ? { commitRateLimit: options.commitRateLimit } : {}),
  });
  const listeners = await serve({
    socketPath: options.socketPath,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}),
    handle: (body) => handleBody(body, methods),
    events,
  });
  if (options.commitRateLimit) log.warn(`TEST-ONLY setting: every commit is slowed to ${options.commitRateLimit} bytes/s (VOLMERGE_TEST_COMMIT_RATE)`);
  log.info('agent serving', {
    socket: options.socketPath,
    ...(listeners.tlsAddress ? { tls: `${listeners.tlsAddress.host}:${listeners.tlsAddress.port}`, token: options.tls?.token !== undefined } : {}),
    stateDir: options.stateDir,
    fileDomains: options.fileDomains ?? null,
    vmMerge: options.libvirt ? `libvirt at ${options.libvirt.uri ?? 'the default connection'}` : options.qmpDir ? `QMP sockets in ${options.qmpDir}` : null,
    maxJobs: options.maxJobs,
    version: options.version,
  });

  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | undefined;
  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info(`agent stopping (${reason}): no new requests; running merges get ${options.stopTimeoutSeconds} s to finish`);
      recoveryStop.abort();
      const closing = listeners.close();
      const interrupted = await registry.stop(options.stopTimeoutSeconds * 1000);
      for (const job of interrupted) log.warn(`job ${job.id} interrupted by the agent stopping: ${job.status}`, { job: job.id, status: job.status, step: job.step ?? null });
      await closing;
      log.info('agent stopped');
      resolveStopped();
    })();
    return stopping;
  };
  return { ...(listeners.tlsAddress ? { tlsAddress: listeners.tlsAddress } : {}), stop, stopped };
}
