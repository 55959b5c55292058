import { type RunTags, tagKey } from "../../core/tags.ts";

/** The runs that carry each tag, so that listing by tags reads only those runs. */
export class TagIndex {
  private readonly runsByTag = new Map<string, Set<string>>();
  private readonly tagsByRun = new Map<string, RunTags>();

  /** Records the run's tags (all of them: tags it no longer has are dropped). */
  set(runId: string, tags: RunTags | undefined): void {
    for (const [key, value] of Object.entries(this.tagsByRun.get(runId) ?? {}))
      this.runsByTag.get(tagKey(key, value))?.delete(runId);
    if (!tags || Object.keys(tags).length === 0) {
      this.tagsByRun.delete(runId);
      return;
    }
    this.tagsByRun.set(runId, tags);
    for (const [key, value] of Object.entries(tags)) {
      const tag = tagKey(key, value);
      let runs = this.runsByTag.get(tag);
      if (!runs) {
        runs = new Set();
        this.runsByTag.set(tag, runs);
      }
      runs.add(runId);
    }
  }

  /** The runs that carry every tag of `wanted` (read from the tag with the fewest runs). */
  runsWith(wanted: RunTags): string[] {
    const sets = Object.entries(wanted).map(([key, value]) => this.runsByTag.get(tagKey(key, value)));
    if (sets.length === 0) return [...this.tagsByRun.keys()];
    if (sets.some((runs) => runs === undefined)) return [];
    const [smallest, ...others] = (sets as Set<string>[]).sort((a, b) => a.size - b.size);
    return [...(smallest as Set<string>)].filter((runId) => others.every((runs) => runs.has(runId)));
  }
}
