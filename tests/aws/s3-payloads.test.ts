import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Payloads } from "../../lib/adapters/aws/s3-payloads.ts";
import { type S3Emulator, startS3 } from "./harness/s3.ts";

const BUCKET = "tsworkflow-payloads-unit";
let s3: S3Emulator;

beforeAll(async () => {
  s3 = await startS3();
  await s3.createBucket(BUCKET);
});

afterAll(async () => {
  await s3?.stop();
});

describe("S3Payloads on s3rver", () => {
  it("stores a payload once under the hash of its content and reads it back in another process", async () => {
    // Prepare
    const client = s3.client();
    let puts = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if ((context as { commandName?: string }).commandName === "PutObjectCommand") puts += 1;
        return next(args);
      },
      { step: "initialize", name: "countPuts" },
    );
    const writer = new S3Payloads({ client, bucket: BUCKET, thresholdBytes: 1024 });
    const json = JSON.stringify("é".repeat(5000));
    // Act
    const first = await writer.put("run_a", json);
    const again = await writer.put("run_a", json);
    const reader = new S3Payloads({ client: s3.client() });
    // Assess
    expect(first).toEqual(again);
    expect(first).toMatchObject({ bucket: BUCKET, bytes: Buffer.byteLength(json) });
    expect(first.key).toMatch(/^runs\/run_a\/[0-9a-f]{64}\.json$/);
    expect(puts).toBe(1);
    expect(await reader.get("run_a", first)).toBe(json);
    expect(writer.shouldOffload(JSON.stringify("x".repeat(1022)))).toBe(false);
    expect(writer.shouldOffload(JSON.stringify("x".repeat(1023)))).toBe(true);
    expect(reader.shouldOffload(json)).toBe(false);
  });

  it("refuses a reference that points outside its run, and deletes only the run's objects", async () => {
    // Prepare
    const payloads = new S3Payloads({ client: s3.client(), bucket: BUCKET });
    const mine = await payloads.put("run_b", JSON.stringify("b".repeat(100_000)));
    const other = await payloads.put("run_c", JSON.stringify("c".repeat(100_000)));
    // Act
    const stolen = await payloads.get("run_b", other).catch((error: unknown) => error);
    const deleted = await payloads.deleteRun(BUCKET, "run_b");
    const left = await s3.client().send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "runs/" }));
    // Assess
    expect(stolen).toMatchObject({ name: "InvalidEventError" });
    expect(deleted).toBe(1);
    const keys = (left.Contents ?? []).map((object) => object.Key);
    expect(keys).not.toContain(mine.key);
    expect(keys).toContain(other.key);
  });
});
