// Benchmark helper: listens to the agent's GET /events over its unix socket and tells when a job has ended.
import { request, type ClientRequest } from 'node:http';

/** A listener on the agent's job events. */
export interface EventListener {
  /** Resolves with performance.now() when the job's event says it ended (done, failed or aborted), and its status. */
  ended(jobId: string): Promise<{ atMs: number; status: string }>;
  close(): void;
}

/** Opens GET /events and resolves once the stream has started. */
export function listenToEvents(socketPath: string): Promise<EventListener> {
  const ended = new Map<string, { atMs: number; status: string }>();
  const waiting = new Map<string, (value: { atMs: number; status: string }) => void>();
  let buffer = '';
  const onBlock = (block: string): void => {
    const data = block.split('\n').find((line) => line.startsWith('data: '));
    if (!data) return;
    const job = JSON.parse(data.slice(6)) as { id: string; status: string };
    if (!['done', 'failed', 'aborted'].includes(job.status)) return;
    const value = { atMs: performance.now(), status: job.status };
    ended.set(job.id, value);
    waiting.get(job.id)?.(value);
  };
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request({ socketPath, path: '/events', method: 'GET' }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`GET /events answered ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          onBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      });
      resolve({
        ended: (jobId) => {
          const known = ended.get(jobId);
          return known ? Promise.resolve(known) : new Promise((settle) => waiting.set(jobId, settle));
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}
