// LiveGraph on query-named-block-nodes and x-debug-query-block-graph as qemu 7.2 returned them (lvm-fixtures/qmp),
// idle and while a commit job has put its filter node (commit_top, mirror_top) into the chain.
import { expect } from 'chai';
import { LiveGraph } from '../../src/live/graph.js';
import type { BlockGraphDump, NamedNode } from '../../src/live/queries.js';
import { checkAgainst } from '../../src/schema.js';
import { jsonFixture } from './fixtures.js';

const DEVICE = '/machine/peripheral/vd0/virtio-backend';

/** The graph recorded in lvm-fixtures/qmp for one situation, checked against the schemas first. */
function recorded(situation: string): LiveGraph {
  const nodes = checkAgainst<NamedNode[]>('qmp-named-block-nodes.schema.json', jsonFixture(`qmp/named-block-nodes-${situation}.json`), 'nodes');
  const dump = checkAgainst<BlockGraphDump>('qmp-block-graph.schema.json', jsonFixture(`qmp/block-graph-${situation}.json`), 'graph');
  return new LiveGraph(nodes, dump);
}

describe('LiveGraph', () => {
  it('follows file, backing and root edges of an idle chain', () => {
    const graph = recorded('idle');
    expect(graph.storageNodes().map((node) => node['node-name']).sort()).to.deep.equal(['base-storage', 'top-storage']);
    expect(graph.formatNodesOver('top-storage')).to.deep.equal(['top-format']);
    expect(graph.backingOf('top-format')).to.equal('base-format');
    expect(graph.backingOf('base-format')).to.equal(undefined);
    expect(graph.devicesOf('top-format')).to.deep.equal([DEVICE]);
    expect(graph.overlaysOf('base-format')).to.deep.equal(['top-format']);
    expect(graph.devicesOf('base-format')).to.deep.equal([]);
  });

  it('looks through the mirror_top filter of an active commit: the device still writes to top, whose backing is base', () => {
    const graph = recorded('active-commit');
    const filter = graph.parents('top-format').find((edge) => graph.isFilter(edge.parent));
    expect(filter?.role).to.equal('backing');
    expect(graph.devicesOf('top-format')).to.deep.equal([DEVICE]);
    expect(graph.backingOf('top-format')).to.equal('base-format');
    // The job's own block backends (no name) are no devices.
    expect(graph.devicesOf('base-format')).to.deep.equal([]);
    expect(graph.formatNodesOver('base-storage')).to.deep.equal(['base-format']);
  });

  it('looks through the commit_top filter of an internal commit: the leaf is still top\'s overlay', () => {
    const graph = recorded('internal-commit');
    expect(graph.backingOf('leaf-format')).to.equal('top-format');
    expect(graph.overlaysOf('top-format')).to.deep.equal(['leaf-format']);
    expect(graph.devicesOf('leaf-format')).to.deep.equal([DEVICE]);
    expect(graph.devicesOf('top-format')).to.deep.equal([]);
  });

  it('accepts the recorded job lists and refuses a job list of the wrong shape', () => {
    for (const kind of ['active', 'internal']) {
      expect(() => checkAgainst('qmp-block-jobs.schema.json', jsonFixture(`qmp/block-jobs-${kind}-commit.json`), 'jobs')).not.to.throw();
      expect(() => checkAgainst('qmp-jobs.schema.json', jsonFixture(`qmp/jobs-${kind}-commit.json`), 'jobs')).not.to.throw();
    }
    const broken = [{ id: 'j1', type: 'commit', status: 'sleepy', 'current-progress': 0, 'total-progress': 0 }];
    expect(() => checkAgainst('qmp-jobs.schema.json', broken, 'QMP socket /x (query-jobs)'))
      .to.throw(/QMP socket \/x \(query-jobs\) printed JSON that does not match qmp-jobs.schema.json/)
      .with.property('code', 'bad-output');
  });
});
