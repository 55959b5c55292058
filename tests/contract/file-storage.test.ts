import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStorage } from "../../lib/adapters/file/file-storage.ts";
import {
  describeAppendOrderContract,
  describeClosedStoreContract,
  describeEventStoreContract,
  type StoreHarness,
} from "./event-store-contract.ts";

let dir: string;
const inNewDirectory: StoreHarness = {
  create: async () => {
    dir = mkdtempSync(join(tmpdir(), "tsw-contract-"));
    return new FileStorage({ dir });
  },
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
};

describeEventStoreContract("FileStorage", inNewDirectory);
describeClosedStoreContract("FileStorage", {
  ...inNewDirectory,
  reopen: async () => new FileStorage({ dir }),
});
describeAppendOrderContract("FileStorage", inNewDirectory);
