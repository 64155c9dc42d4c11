// The agent's job table: queue with max jobs, states, abort before and while running, delete, expiry.
import { expect } from 'chai';
import { VolmergeError } from '../../src/errors.js';
import { JobRegistry } from '../../src/agent/registry.js';
import type { JobContext, JobRecord } from '../../src/agent/registry-types.js';

/** A job body that the test finishes by hand. */
function manualJob(): { work: (context: JobContext) => Promise<void>; finish: () => void; fail: (e: Error) => void; context?: JobContext } {
  const handle: ReturnType<typeof manualJob> = {
    work: (context) =>
      new Promise<void>((resolve, reject) => {
        handle.context = context;
        handle.finish = resolve;
        handle.fail = reject;
        context.signal.addEventListener('abort', () => reject(context.signal.reason as Error));
      }),
    finish: () => undefined,
    fail: () => undefined,
  };
  return handle;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function statuses(registry: JobRegistry): Record<string, string> {
  return Object.fromEntries(registry.list().map((j) => [j.id, j.status]));
}

describe('agent job registry', () => {
  it('runs at most maxJobs at once; the others wait as pending and start in order', async () => {
    const registry = new JobRegistry({ maxJobs: 2, finishedTtlMs: 60_000 });
    const jobs = [manualJob(), manualJob(), manualJob()];
    jobs.forEach((job, i) => registry.add({ id: `j${i}`, description: 'merge_subchain', volumes: [`v${i}`], work: job.work }));
    await tick();
    expect(statuses(registry)).to.deep.equal({ j0: 'running', j1: 'running', j2: 'pending' });
    jobs[0]?.finish();
    for (let i = 0; i < 5; i += 1) await tick();
    expect(statuses(registry)).to.include({ j0: 'done', j2: 'running' });
    jobs[1]?.finish();
    jobs[2]?.finish();
    await registry.idle();
    expect(statuses(registry)).to.deep.equal({ j0: 'done', j1: 'done', j2: 'done' });
    expect(registry.get('j0')?.progress).to.equal(100);
  });

  it('refuses a job id in use and a volume that an unfinished job uses, changing nothing', async () => {
    const registry = new JobRegistry({ maxJobs: 1, finishedTtlMs: 60_000 });
    const job = manualJob();
    registry.add({ id: 'a', description: 'merge_subchain', volumes: ['top', 'base'], work: job.work });
    expect(() => registry.add({ id: 'a', description: 'merge_subchain', volumes: ['x'], work: manualJob().work }))
      .to.throw(VolmergeError)
      .with.property('code', 'job-exists');
    expect(() => registry.add({ id: 'b', description: 'merge_subchain', volumes: ['base', 'other'], work: manualJob().work }))
      .to.throw(/in use by job a/)
      .with.property('code', 'busy');
    expect(registry.list().map((j) => j.id)).to.deep.equal(['a']);
    await tick();
    job.finish();
    await registry.idle();
    expect(() => registry.add({ id: 'b', description: 'merge_subchain', volumes: ['base'], work: async () => undefined })).not.to.throw();
    await registry.idle();
  });

  it('records progress that never moves backwards, and the step', async () => {
    const registry = new JobRegistry({ maxJobs: 1, finishedTtlMs: 60_000 });
    const job = manualJob();
    registry.add({ id: 'p', description: 'merge_subchain', volumes: ['v'], work: job.work });
    await tick();
    job.context?.step('commit');
    job.context?.progress(40);
    job.context?.progress(25);
    expect(registry.get('p')).to.include({ progress: 40, step: 'commit', status: 'running' });
    job.context?.progress(250);
    expect(registry.get('p')?.progress).to.equal(100);
    job.finish();
    await registry.idle();
  });

  it('ends a failed job with its error code and message', async () => {
    const registry = new JobRegistry({ maxJobs: 1, finishedTtlMs: 60_000 });
    registry.add({
      id: 'f',
      description: 'merge_subchain',
      volumes: ['v'],
      work: async () => {
        throw new VolmergeError('bitmap-in-use', 'base /x: bitmap b is in-use');
      },
    });
    await registry.idle();
    expect(registry.get('f')).to.deep.include({ status: 'failed', error: { code: 'bitmap-in-use', message: 'base /x: bitmap b is in-use' } });
  });

  it('aborts a pending job at once and a running one through aborting', async () => {
    const transitions: string[] = [];
    const registry = new JobRegistry({ maxJobs: 1, finishedTtlMs: 60_000, onTransition: (j: JobRecord) => transitions.push(`${j.id}:${j.status}`) });
    const running = manualJob();
    let pendingStarted = false;
    registry.add({ id: 'r', description: 'merge_subchain', volumes: ['1'], work: running.work });
    registry.add({
      id: 'q',
      description: 'merge_subchain',
      volumes: ['2'],
      work: async () => {
        pendingStarted = true;
      },
    });
    await tick();
    expect(registry.abort('q').status).to.equal('aborted');
    expect(registry.get('q')?.error?.message).to.match(/before it started; nothing was changed/);
    expect(registry.abort('r').status).to.equal('aborting');
    expect(registry.abort('r').status).to.equal('aborting');
    await registry.idle();
    expect(statuses(registry)).to.deep.equal({ r: 'aborted', q: 'aborted' });
    expect(registry.get('r')?.error?.code).to.equal('aborted');
    expect(pendingStarted).to.equal(false);
    expect(transitions).to.deep.equal(['r:pending', 'r:running', 'q:pending', 'q:aborted', 'r:aborting', 'r:aborted']);
    expect(() => registry.abort('r')).to.throw(VolmergeError).with.property('code', 'job-not-active');
    expect(() => registry.abort('nope')).to.throw(VolmergeError).with.property('code', 'no-such-job');
  });

  it('calls a job done when its work completed although an abort came too late', async () => {
    const registry = new JobRegistry({ maxJobs: 1, finishedTtlMs: 60_000 });
    let finish: () => void = () => undefined;
    registry.add({ id: 'late', description: 'merge_subchain', volumes: ['v'], work: () => new Promise<void>((resolve) => (finish = resolve)) });
    await tick();
    registry.abort('late');
    finish();
    await registry.idle();
    expect(registry.get('late')?.status).to.equal('done');
  });

  it('deletes only finished jobs, and forgets finished jobs after the delay', async () => {
    const registry = new JobRegistry({ maxJobs: 1, finishedTtlMs: 30 });
    const job = manualJob();
    registry.add({ id: 'd', description: 'merge_subchain', volumes: ['v'], work: job.work });
    await tick();
    expect(() => registry.delete('d')).to.throw(VolmergeError).with.property('code', 'job-not-finished');
    job.finish();
    await registry.idle();
    registry.delete('d');
    expect(registry.get('d')).to.equal(undefined);
    expect(() => registry.delete('d')).to.throw(VolmergeError).with.property('code', 'no-such-job');

    registry.add({ id: 'e', description: 'merge_subchain', volumes: ['v'], work: async () => undefined });
    await registry.idle();
    expect(registry.get('e')?.status).to.equal('done');
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(registry.get('e')).to.equal(undefined);
  });

  it('shows recovered jobs: held ones as pending until added, ended ones as failed, or done by another run with a note', async () => {
    const registry = new JobRegistry({ maxJobs: 1, finishedTtlMs: 60_000 });
    registry.hold({ id: 'waiting', description: 'merge_subchain', volumes: ['t', 'b'] });
    registry.hold({ id: 'gone', description: 'merge_subchain', volumes: ['t2', 'b2'] });
    registry.hold({ id: 'elsewhere', description: 'merge_subchain', volumes: ['t3', 'b3'] });
    await tick();
    expect(statuses(registry)).to.deep.equal({ waiting: 'pending', gone: 'pending', elsewhere: 'pending' });
    registry.addEnded({ id: 'elsewhere', description: 'merge_subchain', volumes: ['t3', 'b3'] }, { status: 'done', note: 'finished by another run' });
    expect(registry.get('elsewhere')).to.deep.include({ status: 'done', progress: 100, note: 'finished by another run' });
    expect(registry.get('elsewhere')?.error).to.equal(undefined);
    expect(registry.abort.bind(registry, 'elsewhere')).to.throw(/already ended/);
    registry.addEnded({ id: 'gone', description: 'merge_subchain', volumes: ['t2', 'b2'] }, { status: 'failed', error: { code: 'volume-deleted', message: 'base b2 was removed' } });
    registry.addEnded({ id: 'broken', description: 'merge_subchain', volumes: [] }, { status: 'failed', error: { code: 'needs-attention', message: 'journal unreadable' } });
    let ran = false;
    registry.add({
      id: 'waiting',
      description: 'merge_subchain',
      volumes: ['t', 'b'],
      work: async () => {
        ran = true;
      },
    });
    await registry.idle();
    expect(ran).to.equal(true);
    expect(statuses(registry)).to.deep.equal({ waiting: 'done', gone: 'failed', elsewhere: 'done', broken: 'failed' });
    expect(registry.get('gone')?.error?.code).to.equal('volume-deleted');
    expect(() => registry.add({ id: 'waiting', description: 'merge_subchain', volumes: ['x'], work: async () => undefined })).to.throw(/already exists/);

    registry.hold({ id: 'held', description: 'merge_subchain', volumes: ['h'] });
    expect(registry.abort('held').error?.message).to.match(/while it waited to be recovered/);
  });

  it('lists only the ids asked for, skipping unknown ones', async () => {
    const registry = new JobRegistry({ maxJobs: 2, finishedTtlMs: 60_000 });
    for (const id of ['a', 'b', 'c']) registry.add({ id, description: 'merge_subchain', volumes: [id], work: async () => undefined });
    await registry.idle();
    expect(registry.list(['c', 'a', 'zz']).map((j) => j.id)).to.deep.equal(['a', 'c']);
  });

  it('on stop, cancels pending jobs, lets running ones finish within the grace time, and interrupts them after it', async () => {
    const registry = new JobRegistry({ maxJobs: 2, finishedTtlMs: 60_000 });
    const quick = manualJob();
    const slow = manualJob();
    registry.add({ id: 'quick', description: 'merge_subchain', volumes: ['1'], work: quick.work });
    registry.add({ id: 'slow', description: 'merge_subchain', volumes: ['2'], work: slow.work });
    registry.add({ id: 'waiting', description: 'merge_subchain', volumes: ['3'], work: async () => undefined });
    await tick();
    setTimeout(() => quick.finish(), 10);
    const interrupted = await registry.stop(100);
    expect(statuses(registry)).to.deep.equal({ quick: 'done', slow: 'aborted', waiting: 'aborted' });
    expect(interrupted.map((j) => `${j.id}:${j.status}`).sort()).to.deep.equal(['slow:aborted', 'waiting:aborted']);
    expect(registry.get('slow')?.error?.message).to.match(/interrupted because the agent stopped/);
    expect(() => registry.add({ id: 'late', description: 'merge_subchain', volumes: ['4'], work: async () => undefined })).to.throw(/stopping/);
  });
});
