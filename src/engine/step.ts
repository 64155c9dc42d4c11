// A step of a job as data: its name, how its journal records it, whether it writes bitmaps or passes the point of
// no return, and its run (which probes the real state, then acts) and undo. A table lists a kind of job's steps in order.

/** What a step found or did, kept in its journal record. */
export type Facts = Record<string, unknown>;

/**
 * How one run of a step is journaled. durable: "started" is written before it acts and "done" after (a crash between
 * leaves a record that recovery probes). quiet: this run only reads, so it is recorded as done with the next durable
 * write. repeatable: it changes something, but running it again mends a crash anywhere in it, and nothing needs its
 * record before the next step's write: recorded as quiet. idle: this run has nothing to do (it neither reads nor
 * writes): recorded as quiet, and the "done" of a durable step before it may wait past it for the next durable write
 * (a crash in that moment only runs that step again).
 */
export type Journaling = 'durable' | 'quiet' | 'repeatable' | 'idle';

/** One step of a table, over a context C that the steps share (what earlier steps found travels in it). */
export interface Step<C> {
  readonly name: string;
  /** How this run of the step is journaled, given what the context says (a prune with nothing to prune is idle). */
  journaling(context: C): Journaling;
  /** It opens an image read-write through qemu: a crash inside it can leave bitmaps in-use. */
  readonly writesBitmaps?: boolean;
  /** From this step on the chain can only be finished forward (base may hold part of top). */
  readonly pointOfNoReturn?: boolean;
  /**
   * Once this step has started, an abort no longer stops the table: the rest runs to its end (a live merge's pivot,
   * which nothing can take back). Before it, an abort stops the table at the next step.
   */
  readonly finishesOnAbort?: boolean;
  /** Probes, then acts; resolves with the facts to journal. Must be safe to run again after a crash. */
  run(context: C): Promise<Facts>;
  /**
   * Takes the step's change back, for a later step that failed and left the chain as it was before it (see
   * RestoredFailure); once undone, the step is forgotten by the journal, so a later run does it again.
   */
  undo?(context: C): Promise<void>;
}

/** A kind of job's steps, in order. */
export type StepTable<C> = readonly Step<C>[];

/** What the journal needs to know of a table: its step names, those that write bitmaps, and its point of no return. */
export interface TableShape {
  readonly kind: string;
  readonly steps: readonly string[];
  readonly bitmapWriting: readonly string[];
  readonly pointOfNoReturn: string | undefined;
}

/** The shape of a table. */
export function shapeOf<C>(kind: string, table: StepTable<C>): TableShape {
  return {
    kind,
    steps: table.map((step) => step.name),
    bitmapWriting: table.filter((step) => step.writesBitmaps).map((step) => step.name),
    pointOfNoReturn: table.find((step) => step.pointOfNoReturn)?.name,
  };
}

/**
 * A failure after which the failing step has put the chain back as it was before it ran: the executor then undoes the
 * steps before it that can be undone (newest first, back to the first that cannot), so that the job can be run again.
 */
export class RestoredFailure extends Error {
  override readonly name = 'RestoredFailure';
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}
