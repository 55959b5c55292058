import { createHash } from "node:crypto";
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { LRUCache } from "lru-cache";
import { InvalidEventError } from "../../core/errors.ts";
import { byteLength, DEFAULT_OFFLOAD_THRESHOLD_BYTES } from "./limits.ts";

/** Where an offloaded payload lives: kept beside the item that holds it, never inside user data. */
export interface PayloadRef {
  bucket: string;
  key: string;
  bytes: number;
}

/** Options of {@link S3Payloads}. */
export interface S3PayloadsOptions {
  client: S3Client;
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
   * Bytes of payloads kept in memory, so that a warm function does not read the same object twice
   * (objects are immutable: their key is the hash of their content).
   * @default 67108864 (64 MB)
   */
  cacheBytes?: number;
}

/** The prefix of a run's objects: everything of the run is deleted with it. */
export const runPrefix = (runId: string) => `runs/${runId}/`;

/**
 * Large payloads in S3: each object is `runs/<runId>/<sha256 of its content>.json`, so a repeated put
 * (a redelivery, the same value in an outcome and in the log) writes the same object, and a crash
 * between the put and the write of the item that refers to it leaves an unreferenced object (removed
 * with the run), never a reference to nothing.
 * @example
 * import { S3Client } from "@aws-sdk/client-s3";
 * import { S3Payloads } from "tsworkflow/aws";
 * const payloads = new S3Payloads({ client: new S3Client({}), bucket: process.env.TSWORKFLOW_PAYLOAD_BUCKET });
 */
export class S3Payloads {
  readonly bucket: string | undefined;
  readonly thresholdBytes: number;
  private readonly client: S3Client;
  private readonly cache: LRUCache<string, string>;

  constructor(options: S3PayloadsOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.thresholdBytes = options.thresholdBytes ?? DEFAULT_OFFLOAD_THRESHOLD_BYTES;
    this.cache = new LRUCache({
      maxSize: options.cacheBytes ?? 64 * 1024 * 1024,
      sizeCalculation: (value) => Math.max(1, value.length),
    });
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
    const key = `${runPrefix(runId)}${createHash("sha256").update(json).digest("hex")}.json`;
    const ref = { bucket, key, bytes: byteLength(json) };
    const cacheKey = `${bucket}/${key}`;
    if (this.cache.has(cacheKey)) return ref;
    await this.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: json, ContentType: "application/json" }),
    );
    this.cache.set(cacheKey, json);
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
    const object = await this.client.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    const json = (await object.Body?.transformToString("utf8")) ?? "";
    this.cache.set(cacheKey, json);
    return json;
  }

  /** Deletes every object of the run in `bucket` (the reaper, when the run expires). Returns how many. */
  async deleteRun(bucket: string, runId: string): Promise<number> {
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: runPrefix(runId), ContinuationToken: token }),
      );
      const keys = (page.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []));
      if (keys.length > 0) {
        await this.client.send(
          new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }),
        );
        deleted += keys.length;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return deleted;
  }
}
