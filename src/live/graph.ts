// The VM's block graph as data: query-named-block-nodes gives each node's facts, x-debug-query-block-graph the named
// edges between nodes (file, backing, root). Filter nodes that jobs insert (commit_top, mirror_top) are looked through.
import type { BlockGraphDump, NamedNode } from './queries.js';

/** Protocol drivers whose node holds a volume's storage (a file or a block device). */
export const STORAGE_DRIVERS: ReadonlySet<string> = new Set(['file', 'host_device']);

/** Drivers of filter nodes: one child, no data of their own; chains are followed through them. */
export const FILTER_DRIVERS: ReadonlySet<string> = new Set(['commit_top', 'mirror_top', 'copy-on-read', 'throttle', 'preallocate', 'copy-before-write', 'compress']);

/** An edge seen from its child: who the parent is and in what role the child serves it. */
export interface ParentEdge {
  parent: string;
  type: 'block-backend' | 'block-job' | 'block-driver';
  role: string;
}

/** The block graph of one VM at one moment. */
export class LiveGraph {
  private readonly byName = new Map<string, NamedNode>();
  private readonly nameOfId = new Map<number, { name: string; type: ParentEdge['type'] }>();

  constructor(
    nodes: readonly NamedNode[],
    private readonly dump: BlockGraphDump,
  ) {
    for (const node of nodes) this.byName.set(node['node-name'], node);
    for (const node of dump.nodes) this.nameOfId.set(node.id, { name: node.name, type: node.type });
  }

  /** The node of that name, if the VM has it. */
  node(name: string): NamedNode | undefined {
    return this.byName.get(name);
  }

  /** Every node of a protocol driver that holds storage (file, host_device). */
  storageNodes(): NamedNode[] {
    return [...this.byName.values()].filter((node) => STORAGE_DRIVERS.has(node.drv));
  }

  /** The block-driver child of name in that role ('file', 'backing'), if any. */
  child(name: string, role: string): string | undefined {
    for (const edge of this.dump.edges) {
      const parent = this.nameOfId.get(edge.parent);
      const child = this.nameOfId.get(edge.child);
      if (parent?.name === name && parent.type === 'block-driver' && edge.name === role && child?.type === 'block-driver') return child.name;
    }
    return undefined;
  }

  /** Every parent of the block-driver node name, with the role it plays for each. */
  parents(name: string): ParentEdge[] {
    const found: ParentEdge[] = [];
    for (const edge of this.dump.edges) {
      const child = this.nameOfId.get(edge.child);
      const parent = this.nameOfId.get(edge.parent);
      if (child?.name === name && child.type === 'block-driver' && parent) found.push({ parent: parent.name, type: parent.type, role: edge.name });
    }
    return found;
  }

  /** Whether the node is a filter (see FILTER_DRIVERS). */
  isFilter(name: string): boolean {
    return FILTER_DRIVERS.has(this.byName.get(name)?.drv ?? '');
  }

  /** The node that backs name (its 'backing' child), looking through filters. */
  backingOf(name: string): string | undefined {
    let below = this.child(name, 'backing');
    while (below !== undefined && this.isFilter(below)) below = this.child(below, 'backing') ?? this.child(below, 'file');
    return below;
  }

  /** The block-driver nodes that have name as their backing (looking through filters): the overlays of name. */
  overlaysOf(name: string): string[] {
    return this.aboveThroughFilters(name).filter((edge) => edge.type === 'block-driver' && edge.role === 'backing').map((edge) => edge.parent);
  }

  /** The devices (named block backends) whose root is name, looking through filters. */
  devicesOf(name: string): string[] {
    return this.aboveThroughFilters(name)
      .filter((edge) => edge.type === 'block-backend' && edge.role === 'root' && edge.parent !== '')
      .map((edge) => edge.parent);
  }

  /** Every parent of name, with each filter parent replaced by the parents of that filter. */
  private aboveThroughFilters(name: string, seen = new Set<string>()): ParentEdge[] {
    seen.add(name);
    return this.parents(name).flatMap((edge) => {
      if (edge.type !== 'block-driver' || !this.isFilter(edge.parent)) return [edge];
      return seen.has(edge.parent) ? [] : this.aboveThroughFilters(edge.parent, seen);
    });
  }

  /** The format nodes that use the storage node as their 'file'. */
  formatNodesOver(storage: string): string[] {
    return this.parents(storage)
      .filter((edge) => edge.type === 'block-driver' && edge.role === 'file' && !this.isFilter(edge.parent))
      .map((edge) => edge.parent);
  }
}
