// Defaults that the CLI and the agent share.

/** Where the CLI keeps journals, locks and bitmap backups unless told otherwise (VOLMERGE_STATE_DIR). */
export function defaultStateDir(): string {
  return process.env.VOLMERGE_STATE_DIR || '/var/lib/volmerge';
}
