// `volmerge agent`: runs the host agent (JSON-RPC 2.0 over HTTP on a unix socket, and on TCP with TLS and client
// certificates when asked) until SIGTERM.
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { defaultStateDir } from '../config.js';
import { DEFAULT_JOB_TTL_SECONDS, DEFAULT_MAX_JOBS, DEFAULT_STOP_TIMEOUT_SECONDS, defaultSocketPath } from '../agent/defaults.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';

/** Options of `volmerge agent`. */
export interface AgentArgs {
  socket: string;
  stateDir: string;
  fileDomains?: string;
  qmpDir?: string;
  maxJobs: number;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tokenFile?: string;
  jobTtl: number;
  stopTimeout: number;
  logLevel: LogLevel;
}

function wholeNumber(value: unknown, name: string, minimum: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) throw new Error(`${name} must be a whole number, ${minimum} or more`);
}

/** Declares the options of `volmerge agent`. */
export function agentBuilder(yargs: Argv): Argv<AgentArgs> {
  return yargs
    .option('socket', { type: 'string', default: defaultSocketPath(), describe: 'Unix socket to serve on, created with mode 0600 (VOLMERGE_SOCKET)' })
    .option('state-dir', { type: 'string', default: defaultStateDir(), describe: 'Folder of job journals and bitmap backups, shared with the CLI (VOLMERGE_STATE_DIR)' })
    .option('file-domains', { type: 'string', describe: 'Root of the file storage domains: <DIR>/<sd_id>/images/<img_id>/<vol_id>' })
    .option('qmp-dir', { type: 'string', describe: "Folder of the VMs' QMP monitor sockets (<vmID>.qmp): VM.merge merges live through them" })
    .option('max-jobs', { type: 'number', default: DEFAULT_MAX_JOBS, describe: 'Merges that run at once; the others wait as pending' })
    .option('listen', { type: 'string', describe: 'Also serve on TCP HOST:PORT, with TLS only (needs --tls-cert, --tls-key, --tls-ca)' })
    .option('tls-cert', { type: 'string', describe: "The agent's certificate (PEM) for --listen" })
    .option('tls-key', { type: 'string', describe: "The agent's private key (PEM) for --listen" })
    .option('tls-ca', { type: 'string', describe: 'The CA (PEM) that must have signed every client certificate on --listen' })
    .option('token-file', { type: 'string', describe: 'File holding a bearer token that every --listen request must send too (optional)' })
    .option('job-ttl', { type: 'number', default: DEFAULT_JOB_TTL_SECONDS, describe: 'Seconds after which finished jobs are forgotten' })
    .option('stop-timeout', { type: 'number', default: DEFAULT_STOP_TIMEOUT_SECONDS, describe: 'On SIGTERM, seconds that running merges get to finish before they are interrupted' })
    .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'Logs go to stderr as JSON lines' })
    .check((args) => {
      if (!args.socket) throw new Error('--socket must not be empty');
      if (!args['state-dir']) throw new Error('--state-dir must not be empty');
      wholeNumber(args['max-jobs'], '--max-jobs', 1);
      wholeNumber(args['job-ttl'], '--job-ttl', 1);
      wholeNumber(args['stop-timeout'], '--stop-timeout', 0);
      const tlsFlags = ['tls-cert', 'tls-key', 'tls-ca'] as const;
      if (args.listen && tlsFlags.some((f) => !args[f])) throw new Error('--listen needs --tls-cert, --tls-key and --tls-ca: TCP is served only with TLS and client certificates');
      if (!args.listen && [...tlsFlags, 'token-file' as const].some((f) => args[f])) throw new Error('--tls-cert, --tls-key, --tls-ca and --token-file go with --listen');
      return true;
    })
    .example('$0 agent --socket /run/volmerge/agent.sock --file-domains /rhev/data-center/mnt', 'Serve on the unix socket only')
    .example(
      '$0 agent --listen 0.0.0.0:8441 --tls-cert /etc/volmerge/agent.pem --tls-key /etc/volmerge/agent.key --tls-ca /etc/volmerge/ca.pem',
      'Also serve on TCP with TLS, for clients whose certificate the CA signed',
    ) as unknown as Argv<AgentArgs>;
}

/** Runs the agent until SIGTERM or SIGINT; returns the exit code (0 after a clean stop, 1 when it could not start). */
export async function agentHandler(args: ArgumentsCamelCase<AgentArgs>): Promise<number> {
  const { configureLog, log } = await import('../log.js');
  configureLog(args.logLevel, true);
  const { asVolmergeError } = await import('../errors.js');
  const { startAgent } = await import('../agent/agent.js');
  const { packageVersion, testCommitRateLimit } = await import('../agent/defaults.js');
  const { parseHostPort } = await import('../agent/client.js');
  const { readTokenFile } = await import('../agent/token.js');
  const { readTlsMaterial } = await import('../agent/tls.js');
  try {
    const tls =
      args.listen && args.tlsCert && args.tlsKey && args.tlsCa
        ? {
            ...parseHostPort(args.listen),
            ...(await readTlsMaterial({ cert: args.tlsCert, key: args.tlsKey, ca: args.tlsCa })),
            ...(args.tokenFile ? { token: await readTokenFile(args.tokenFile) } : {}),
          }
        : undefined;
    const rate = testCommitRateLimit();
    const agent = await startAgent({
      socketPath: args.socket,
      stateDir: args.stateDir,
      maxJobs: args.maxJobs,
      jobTtlSeconds: args.jobTtl,
      stopTimeoutSeconds: args.stopTimeout,
      version: packageVersion(),
      ...(args.fileDomains ? { fileDomains: args.fileDomains } : {}),
      ...(args.qmpDir ? { qmpDir: args.qmpDir } : {}),
      ...(tls ? { tls } : {}),
      ...(rate ? { commitRateLimit: rate } : {}),
    });
    // Listeners stay installed (not once): execa's exit hook re-raises a signal that no other listener handles, which would
    // kill the agent before running merges could finish. A second signal while stopping changes nothing.
    const onSignal = (signal: NodeJS.Signals): void => {
      void agent.stop(`received ${signal}`);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    await agent.stopped;
    return 0;
  } catch (thrown) {
    const error = asVolmergeError(thrown);
    log.error(`agent cannot start: ${error.message}`, { code: error.code });
    return 1;
  }
}
