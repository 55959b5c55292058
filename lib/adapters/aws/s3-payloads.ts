import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { InvalidEventError } from "../../core/errors.ts";
import { sha256 } from "../../core/hash.ts";
import { LruMap } from "../../core/lru-map.ts";
import { importOptional } from "../../core/optional-dependency.ts";
import { byteLength, DEFAULT_OFFLOAD_THRESHOLD_BYTES } from "./limits.ts";

/** Where an offloaded payload lives: kept beside the item that holds it, never inside user data. */
export interface PayloadRef {
  bucket: string;
  key: string;
  bytes: number;
}

/** Options of {@link S3Payloads}. */
export interface S3PayloadsOptions {
  /**
   * The S3 client. Without it, one is made from `clientConfig` the first time a payload is read or
   * written, so that a function whose payloads all fit in DynamoDB never loads the S3 SDK.
   * @default a new `S3Client(clientConfig)`
   */
  client?: S3Client;
  /**
   * Settings of the client made when `client` is omitted.
   * @default {} (the region and credentials of the environment)
   */
  clientConfig?: S3ClientConfig;
  /**
   * The bucket new payloads go to (the construct's payload bucket). Without it nothing is offloaded,
   * but references already stored are still read.
   * @default none
   */
  bucket?: string;
  /**
   * A payload (one field of an event or outcome, as JSON) larger than this goes to S3.
   * @default 65536 (64 KB)
   */
  thresholdBytes?: number;
  /**
   * How many payloads of at most 512 Ki characters are kept in memory (up to twice as many between evictions), so
   * that a warm function does not read the same object twice (objects are immutable: their key is the
   * hash of their content). Larger payloads are read from S3 each time.
   * @default 32 (at most 64 MB)
   */
  cacheEntries?: number;
}

/** Payloads of up to 512 Ki characters (at most 1 MB of memory each) are cached. */
const MAX_CACHED_CHARACTERS = 512 * 1024;

/** The prefix of a run's objects: everything of the run is deleted with it. */
export const runPrefix = (runId: string) => `runs/${runId}/`;

/**
 * Large payloads in S3: each object is `runs/<runId>/<sha256 of its content>.json`, so a repeated put
 * (a redelivery, the same value in an outcome and in the log) writes the same object, and a crash
 * between the put and the write of the item that refers to it leaves an unreferenced object (removed
 * with the run), never a reference to nothing.
 * @example
 * import { S3Payloads } from "tsworkflow/aws";
 * const payloads = new S3Payloads({ bucket: process.env.TSWORKFLOW_PAYLOAD_BUCKET });
 */
export class S3Payloads {
  readonly bucket: string | undefined;
  readonly thresholdBytes: number;
  private readonly options: S3PayloadsOptions;
  private readonly cache: LruMap<string>;
  /** Objects known to exist (their content may be too large to cache): not put again. */
  private readonly stored = new LruMap<true>(4096);
  private sdk: Promise<S3Sdk> | undefined;

  constructor(options: S3PayloadsOptions = {}) {
    this.options = options;
    this.bucket = options.bucket;
    this.thresholdBytes = options.thresholdBytes ?? DEFAULT_OFFLOAD_THRESHOLD_BYTES;
    this.cache = new LruMap(Math.max(1, options.cacheEntries ?? 32));
  }

  /** True when new payloads go to S3. */
  get offloads(): boolean {
    return this.bucket !== undefined;
  }

  /** True when a payload of this JSON should go to S3. */
  shouldOffload(json: string): boolean {
    return (
      this.bucket !== undefined &&
      json.length > this.thresholdBytes / 4 &&
      byteLength(json) > this.thresholdBytes
    );
  }

  /** Stores `json` for the run and returns its reference. */
  async put(runId: string, json: string): Promise<PayloadRef> {
    const bucket = this.bucket;
    if (!bucket) throw new Error("S3Payloads.put needs a bucket.");
    const key = `${runPrefix(runId)}${sha256(json)}.json`;
    const ref = { bucket, key, bytes: byteLength(json) };
    const cacheKey = `${bucket}/${key}`;
    if (this.stored.has(cacheKey)) return ref;
    const { client, commands } = await this.load();
    await client.send(
      new commands.PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: json,
        ContentType: "application/json",
      }),
    );
    this.remember(cacheKey, json);
    return ref;
  }

  /** The JSON a reference of `runId` points to. */
  async get(runId: string, ref: PayloadRef): Promise<string> {
    if (!ref.key.startsWith(runPrefix(runId)))
      throw new InvalidEventError(
        `A stored payload reference of run ${runId} points outside the run (${ref.key}).`,
      );
    const cacheKey = `${ref.bucket}/${ref.key}`;
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined) return cached;
    const { client, commands } = await this.load();
    const object = await client.send(new commands.GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    const json = (await object.Body?.transformToString("utf8")) ?? "";
    this.remember(cacheKey, json);
    return json;
  }

  /** Deletes every object of the run in `bucket` (the reaper, when the run expires). Returns how many. */
  async deleteRun(bucket: string, runId: string): Promise<number> {
    const { client, commands } = await this.load();
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await client.send(
        new commands.ListObjectsV2Command({
          Bucket: bucket,
          Prefix: runPrefix(runId),
          ContinuationToken: token,
        }),
      );
      const keys = (page.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []));
      if (keys.length > 0) {
        await client.send(
          new commands.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }),
        );
        deleted += keys.length;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return deleted;
  }

  private remember(cacheKey: string, json: string): void {
    this.stored.set(cacheKey, true);
    if (json.length <= MAX_CACHED_CHARACTERS) this.cache.set(cacheKey, json);
  }

  /** Releases the client this instance made (a given `client` is left to its owner). */
  async close(): Promise<void> {
    if (this.options.client || !this.sdk) return;
    const sdk = this.sdk;
    this.sdk = undefined;
    await sdk.then(
      ({ client }) => client.destroy(),
      () => {},
    );
  }

  /** The client and the SDK's commands, imported on first use. */
  private load(): Promise<S3Sdk> {
    this.sdk ??= importOptional(() => import("@aws-sdk/client-s3"), "Payloads over 64 KB on AWS (S3)", [
      "@aws-sdk/client-s3",
    ]).then((commands) => ({
      commands,
      client: this.options.client ?? new commands.S3Client(this.options.clientConfig ?? {}),
    }));
    // A failed import is not cached: installing the package and retrying works without a restart.
    this.sdk.catch(() => {
      this.sdk = undefined;
    });
    return this.sdk;
  }
}

interface S3Sdk {
  client: S3Client;
  commands: typeof import("@aws-sdk/client-s3");
}
