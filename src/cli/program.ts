// volmerge's commands as yargs definitions: the one source of `volmerge --help` (src/cli/main.ts) and of the man page
// volmerge(1), which scripts/man-page.ts builds by walking these same definitions.
import type { Argv } from 'yargs';
// Each command's module is imported only when that command runs (its builder is async), so `volmerge --help` and every
// command load no more than they use: winston, the agent and the merge pipeline cost start-up time.
import type { MergeArgs } from './merge-command.js';
import type { AgentArgs } from './agent-command.js';
import type { JobsArgs } from './jobs-command.js';
import type { CallArgs } from './call-command.js';
import type { StatusArgs } from './status-command.js';
import type { ClearStaleArgs } from './clear-stale-command.js';

/** What volmerge is, in a sentence or two: the top of --help and the man page's description. */
export const PROGRAM_DESCRIPTION =
  'Merge a qcow2 snapshot (top) into its backing volume (base), keeping dirty bitmaps valid: cold with qemu-img, or live inside ' +
  'the running VM through its QMP monitor (--qmp). The host agent runs the same merges as jobs over JSON-RPC 2.0, on a unix ' +
  'socket and on TCP with TLS and client certificates.';

/** The exit codes of volmerge merge, as --help's epilogue says them. */
export const EXIT_CODES =
  'Exit codes: 0 merged (or planned), 1 refused or failed (one line on stderr says why), 2 usage error; ' +
  'a merge stopped by Ctrl-C or SIGTERM ends by that signal (the shell shows 130 or 143), after saying where the chain stands.';

/** Declares every command on a yargs instance; `setExitCode` receives the code of the command that ran. */
export function defineProgram(yargs: Argv, setExitCode: (code: number) => void): Argv {
  return yargs
    .scriptName('volmerge')
    .usage(`$0 <command> [options]\n\n${PROGRAM_DESCRIPTION}`)
    .command<MergeArgs>(
      'merge',
      'Merge top into base. Cold: prune stale bitmaps, extend base, commit, copy bitmaps, verify; then, when asked, rebase ' +
        "top's child, shrink base, remove top. Live, with --qmp: block-commit inside the VM that runs the chain, bitmaps carried at the pivot",
      async (y) => (await import('./merge-command.js')).mergeBuilder(y),
      async (args) => setExitCode(await (await import('./merge-command.js')).mergeHandler(args)),
    )
    .command<AgentArgs>(
      'agent',
      'Run the host agent: cold and live merge jobs over JSON-RPC 2.0 on a unix socket, and with --listen on TCP with TLS and client certificates',
      async (y) => (await import('./agent-command.js')).agentBuilder(y),
      async (args) => setExitCode(await (await import('./agent-command.js')).agentHandler(args)),
    )
    .command<JobsArgs>(
      'jobs',
      "List the agent's jobs with their status and progress",
      async (y) => (await import('./jobs-command.js')).jobsBuilder(y),
      async (args) => setExitCode(await (await import('./jobs-command.js')).jobsHandler(args)),
    )
    .command<CallArgs>(
      'call <method> [params]',
      'Send one JSON-RPC request to the agent and print its result',
      async (y) => (await import('./call-command.js')).callBuilder(y),
      async (args) => setExitCode(await (await import('./call-command.js')).callHandler(args)),
    )
    .command<StatusArgs>(
      'status',
      'Show whether a chain is idle, being merged, left unfinished by a crash (and the command that finishes it), or needs attention',
      async (y) => (await import('./status-command.js')).statusBuilder(y),
      async (args) => setExitCode(await (await import('./status-command.js')).statusHandler(args)),
    )
    .command<ClearStaleArgs>(
      'clear-stale',
      'Remove a stale job: its journal (whose base is gone, or is another volume now) and the marks it left; a job that is not stale is refused, nothing changed',
      async (y) => (await import('./clear-stale-command.js')).clearStaleBuilder(y),
      async (args) => setExitCode(await (await import('./clear-stale-command.js')).clearStaleHandler(args)),
    )
    .completion('completion', 'Print a bash completion script (volmerge completion >> ~/.bashrc; zsh: bashcompinit first)')
    .epilogue(EXIT_CODES);
}
