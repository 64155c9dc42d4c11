// The one request of a merge: what the CLI, the agent and start-up recovery hand to the core, and what the journal keeps.

/** What to merge and how. */
export interface MergeRequest {
  top: string;
  base: string;
  /** Free room added to the needed size (bytes); also left in a shrunk base that is now the leaf. */
  leafRoom?: number;
  /** Top's child (internal merge): rebased onto base once the merge is verified, with top retired first. */
  child?: string;
  /** Remove top once the merge is verified and nothing is backed by it any more. */
  removeTop?: boolean;
  /** Shrink the base LV to what the merged image uses (image-end-offset), in whole extents. */
  shrink?: boolean;
  /** Drop top's bitmaps that base lacks instead of carrying them (vdsm's merge_bitmaps=false; needed for a raw base). */
  dropBitmaps?: boolean;
  /**
   * Drop the bitmaps found in-use (inconsistent: a VM killed or crashed leaves them so) from top and base instead of
   * refusing the merge; the result names them, and the next backup of each must be a full one.
   */
  dropInconsistent?: boolean;
  /** Commit rate limit in bytes per second (tests only). */
  rateLimit?: number;
  /** The QMP monitor socket of the VM that runs the chain: a live merge (block-commit inside the VM). */
  qmp?: string;
  /** The libvirt domain (name or UUID) whose disk runs the chain: a live merge through libvirt. */
  domain?: string;
  /** libvirt's connection URI for domain (virsh -c); libvirt's default when absent. */
  connect?: string;
  /**
   * Base already holds part of top (a live merge's commit that its VM's end cut short): sized for the holes it left.
   * Journaled, so that a run that finishes this merge after a crash sizes base the same way.
   */
  baseHoldsPartOfTop?: boolean;
}

/** The request as the journal keeps it: paths made absolute, leaf room explicit, nothing that is off. */
export function durableRequest(request: MergeRequest, absolute: (path: string) => string): MergeRequest & { leafRoom: number } {
  return {
    top: absolute(request.top),
    base: absolute(request.base),
    leafRoom: request.leafRoom ?? 0,
    ...(request.child ? { child: absolute(request.child) } : {}),
    ...(request.removeTop ? { removeTop: true } : {}),
    ...(request.shrink ? { shrink: true } : {}),
    ...(request.dropBitmaps ? { dropBitmaps: true } : {}),
    ...(request.dropInconsistent ? { dropInconsistent: true } : {}),
    ...(request.rateLimit ? { rateLimit: Math.ceil(request.rateLimit) } : {}),
    ...(request.qmp ? { qmp: absolute(request.qmp) } : {}),
    ...(request.baseHoldsPartOfTop ? { baseHoldsPartOfTop: true } : {}),
    ...(request.domain ? { domain: request.domain } : {}),
    ...(request.connect ? { connect: request.connect } : {}),
  };
}
