import { deflateRawSync, inflateRawSync } from "node:zlib";

/**
 * What the events of a commit usually say, as a preset DEFLATE dictionary: with it (and the run id,
 * which every event repeats) a step's two events shrink from about 420 bytes of JSON to 120, where
 * plain DEFLATE gets 200. Stored commits were compressed with it: it must never change (a new
 * dictionary needs a new attribute name).
 */
const DICTIONARY =
  'sleep_created","sleepId":"resumeAt":"workflow_suspended","waitingFor":["step_completed","stepId":"stepName":"attempt":1,"startedAt":17"durationMs":0,"result":{"type":"step_started","input":["runId":"';

const dictionaryOf = (runId: string) => Buffer.from(DICTIONARY + runId);

/**
 * A commit's events (their JSON) as stored in its `z` attribute: DEFLATE with the dictionary above. A
 * cold activation reads the whole log, so this is what its reads grow with; a commit's write units fall
 * too once its results pass 1 KB.
 */
export const packEvents = (runId: string, json: string): Buffer =>
  deflateRawSync(json, { dictionary: dictionaryOf(runId) });

/** The JSON of a commit's events from its `z` bytes (the head's and its parts', in order). */
export const unpackEvents = (runId: string, bytes: Uint8Array): string =>
  inflateRawSync(bytes, { dictionary: dictionaryOf(runId) }).toString();
