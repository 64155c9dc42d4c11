// `volmerge jobs`: lists the agent's jobs with their status and progress (Host.getJobs), as a table or as JSON.
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { clientFor, clientOptions, type ClientArgs } from '../agent/client-options.js';

/** Options of `volmerge jobs`. */
export interface JobsArgs extends ClientArgs {
  json: boolean;
}

/** One job as `volmerge jobs` reads it (rpc-job-status.schema.json). */
interface JobStatus {
  id: string;
  status: string;
  progress: number;
  aborting?: true;
  step?: string;
  error?: { code: number; name: string; message: string };
}

/** Declares the options of `volmerge jobs`. */
export function jobsBuilder(yargs: Argv): Argv<JobsArgs> {
  return clientOptions(yargs)
    .option('json', { type: 'boolean', default: false, describe: "Print Host.getJobs' result as one JSON object" })
    .example('$0 jobs', 'List the jobs of the agent on the default socket') as unknown as Argv<JobsArgs>;
}

/** The jobs as an aligned table, one line each. */
export function formatJobs(jobs: readonly JobStatus[]): string {
  if (jobs.length === 0) return 'no jobs';
  const rows = jobs.map((j) => [j.id, j.aborting ? `${j.status} (aborting)` : j.status, `${j.progress.toFixed(1)}%`, j.step ?? '-', j.error ? `${j.error.name} (${j.error.code}): ${j.error.message}` : '']);
  const header = ['ID', 'STATUS', 'PROGRESS', 'STEP', 'ERROR'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Runs `volmerge jobs`; returns the exit code (0 listed, 1 the agent could not be asked). */
export async function jobsHandler(args: ArgumentsCamelCase<JobsArgs>): Promise<number> {
  const { asVolmergeError } = await import('../errors.js');
  const { checkAgainst } = await import('../schema.js');
  const client = await clientFor(args).catch((error: unknown) => {
    console.error(`volmerge: ${asVolmergeError(error).message}`);
    return undefined;
  });
  if (!client) return 1;
  try {
    const result = await client.result('Host.getJobs', {});
    const jobs = checkAgainst<Record<string, JobStatus>>('rpc-result-host-get-jobs.schema.json', result, 'Host.getJobs');
    console.log(args.json ? JSON.stringify(jobs) : formatJobs(Object.values(jobs)));
    return 0;
  } catch (thrown) {
    console.error(`volmerge: ${asVolmergeError(thrown).message}`);
    return 1;
  } finally {
    client.close();
  }
}
