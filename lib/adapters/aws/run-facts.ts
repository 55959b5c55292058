import { LruMap } from "../../core/lru-map.ts";

/** The run document as this process last wrote or read it: at version `through`, `status` since `at`. */
export interface DocumentState {
  /** The version up to which the document's status and time are known to be current. */
  through: number;
  status: string;
  /** The document's `updatedAt`, epoch ms. */
  at: number;
}

/**
 * True when `document` says running as of `base` and a commit from `base` leaves the run `status` running:
 * the document then says running as of that commit's end too (see `DynamoDBEngineStore.commit`).
 */
export function keepsRunning(
  document: DocumentState | undefined,
  base: number,
  status: unknown,
): document is DocumentState {
  return document?.status === "running" && document.through === base && status === "running";
}

/** What the store knows about a run without asking DynamoDB again. */
export interface RunFact {
  /** Versions at which a commit ended: committing there needs no read (see `isBoundary`). */
  boundaries: Set<number>;
  /** The highest version the run document is known to hold. */
  documentVersion?: number;
  /** What the document says, when this process knows it holds nothing newer (see `DynamoDBEngineStore.commit`). */
  document?: DocumentState;
  /** True when the run is a child run (its finish must reach its parent: the sweeper checks). */
  child?: boolean;
}

/** The facts of the runs this process read or wrote lately, the least recently used forgotten first. */
export class RunFacts {
  private readonly facts: LruMap<RunFact>;

  constructor(max: number) {
    this.facts = new LruMap(Math.max(1, max));
  }

  get(runId: string): RunFact | undefined {
    return this.facts.get(runId);
  }

  learn(
    runId: string,
    fact: { boundary?: number; documentVersion?: number; child?: boolean; document?: DocumentState },
  ): void {
    let known = this.facts.get(runId);
    if (!known) {
      known = { boundaries: new Set() };
      this.facts.set(runId, known);
    }
    if (fact.boundary !== undefined) known.boundaries.add(fact.boundary);
    if (fact.documentVersion !== undefined)
      known.documentVersion = Math.max(known.documentVersion ?? 0, fact.documentVersion);
    if (fact.document) known.document = fact.document;
    if (fact.child !== undefined) known.child = fact.child;
  }

  forget(runId: string): void {
    this.facts.delete(runId);
  }

  clear(): void {
    this.facts.clear();
  }
}
