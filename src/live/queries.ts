// The QMP queries that a live merge reads, each checked against its schema in schemas/ and returned typed.
import type { QmpClient } from '../qemu/qmp-client.js';

/** One dirty bitmap of a block node, as query-named-block-nodes reports it. */
export interface LiveBitmap {
  name: string;
  recording: boolean;
  persistent: boolean;
  busy: boolean;
  granularity: number;
  count: number;
  /** Set (true) when the bitmap was found in-use on open: its contents cannot be trusted. */
  inconsistent?: boolean;
}

/** One block node (the fields volmerge reads). */
export interface NamedNode {
  'node-name': string;
  drv: string;
  ro: boolean;
  file: string;
  backing_file?: string;
  write_threshold: number;
  image: { filename: string; format: string; 'virtual-size': number; 'backing-filename'?: string };
  'dirty-bitmaps'?: LiveBitmap[];
}

/** x-debug-query-block-graph: the nodes and the named edges between them. */
export interface BlockGraphDump {
  nodes: { id: number; type: 'block-backend' | 'block-job' | 'block-driver'; name: string }[];
  edges: { parent: number; child: number; name: string; perm: string[]; 'shared-perm': string[] }[];
}

/** One block job as query-block-jobs reports it. */
export interface BlockJobInfo {
  type: string;
  device: string;
  len: number;
  offset: number;
  busy: boolean;
  paused: boolean;
  speed: number;
  'io-status': 'ok' | 'failed' | 'nospace';
  ready: boolean;
  status: string;
  error?: string;
}

/** One job as query-jobs reports it (concluded jobs too, until dismissed). */
export interface JobInfo {
  id: string;
  type: string;
  status: string;
  'current-progress': number;
  'total-progress': number;
  error?: string;
}

/** Every block node of the VM (flat: backing images not nested), without the unnamed bitmaps that jobs use. */
export async function queryNodes(client: QmpClient): Promise<NamedNode[]> {
  const nodes = await client.query<(NamedNode & { 'dirty-bitmaps'?: (Omit<LiveBitmap, 'name'> & { name?: string })[] })[]>(
    'query-named-block-nodes',
    'qmp-named-block-nodes.schema.json',
    { flat: true },
  );
  return nodes.map((node) => {
    const named = node['dirty-bitmaps']?.filter((bitmap): bitmap is LiveBitmap => bitmap.name !== undefined);
    return named === undefined ? node : { ...node, 'dirty-bitmaps': named };
  });
}

/** The VM's block graph with every edge named (file, backing, root). */
export function queryGraph(client: QmpClient): Promise<BlockGraphDump> {
  return client.query<BlockGraphDump>('x-debug-query-block-graph', 'qmp-block-graph.schema.json');
}

/** Every block job. */
export function queryBlockJobs(client: QmpClient): Promise<BlockJobInfo[]> {
  return client.query<BlockJobInfo[]>('query-block-jobs', 'qmp-block-jobs.schema.json');
}

/** Every job, concluded ones included. */
export function queryJobs(client: QmpClient): Promise<JobInfo[]> {
  return client.query<JobInfo[]>('query-jobs', 'qmp-jobs.schema.json');
}

/** The VM's run state: running, or paused and why. */
export function queryStatus(client: QmpClient): Promise<{ status: string; running: boolean }> {
  return client.query<{ status: string; running: boolean }>('query-status', 'qmp-status.schema.json');
}
