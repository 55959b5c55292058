import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ConfigurationError } from "../../core/errors.ts";
import {
  RATE_LINE_GRACE_MS,
  type RateAnswer,
  type RateLimitStore,
  type RateRequest,
  turnOf,
  UNREPORTED_START_MS,
} from "../../ports/rate-limit-store.ts";
import { mappingErrors } from "./dynamodb-errors.ts";
import { DynamoDBDocumentClient } from "./dynamodb-sdk.ts";
import { fitsItem, VERSIONED_STATE_BYTES, VersionedItem } from "./versioned-item.ts";

/**
 * A limit key's starts in one item: `[holder, when its work began]` in grant order (a start not reported
 * yet: its grant + `UNREPORTED_START_MS`), then the line, `[holder, end of its place]` in arrival order.
 */
interface KeyRates {
  started: [string, number][];
  waiting: [string, number][];
  /** The period of the last `take`, for the item's expiry. */
  periodMs: number;
}

/** Options of {@link DynamoDBRateLimitStore}. */
export interface DynamoDBRateLimitStoreOptions {
  /** The DynamoDB client (one per cold start, shared with the runtime's if you like). */
  client: DynamoDBClient;
  /** The kit's table (`loadConfig().tableName`). */
  tableName: string;
  /** Tries of a read-modify-write that lost a race with another writer before it gives up. @default 20 */
  maxConflicts?: number;
}

const ratesPk = (key: string) => `RATES#${key}`;
const RATES_SK = "RATES";
/** Kept past its last start or place, so that a caller whose clock is a little behind still finds it. */
const TTL_MARGIN_SECONDS = 3_600;

/**
 * Start rates in the kit's DynamoDB table, one item per limit key (`pk = RATES#<key>`, `sk = RATES`): the
 * sliding log of the last period's starts and the line behind them as one JSON attribute, changed by a read
 * then a put conditional on the item's version (a writer that lost the race to another Lambda reads again),
 * with the same answers as `MemoryRateLimitStore`. The item expires (table TTL) an hour after its last start
 * has left the window and its last place in line has run out.
 *
 * One item per key holds 350 KB of JSON: some 3,500 entries (starts of the last period plus places in line)
 * with step holders of about 100 bytes. Beyond that:
 * - a caller that finds the line full is told when to ask again without taking a place (it is not lost; the
 *   order among such callers is not kept);
 * - a limit whose starts in one period do not fit (`limit` above some 3,500) is refused with a
 *   `ConfigurationError` when a start would not fit: split the key, or use a shorter period and a lower limit.
 * @example
 * import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
 * import { DynamoDBRateLimitStore } from "tsworkflow/aws";
 * const rates = new DynamoDBRateLimitStore({ client: new DynamoDBClient({}), tableName: "tsworkflow" });
 */
export class DynamoDBRateLimitStore implements RateLimitStore {
  private readonly items: VersionedItem<KeyRates>;

  constructor(options: DynamoDBRateLimitStoreOptions) {
    this.items = new VersionedItem(
      {
        documents: mappingErrors(DynamoDBDocumentClient.from(options.client), options.tableName),
        tableName: options.tableName,
        attribute: "rates",
        maxConflicts: options.maxConflicts ?? 20,
      },
      () => ({ started: [], waiting: [], periodMs: 0 }),
    );
  }

  /** @throws ConfigurationError when `limit` starts of one period do not fit one item */
  take({ key, limit, periodMs, holder, now }: RateRequest): Promise<RateAnswer> {
    return this.items.change(
      ratesPk(key),
      RATES_SK,
      (rates): { answer: RateAnswer; write?: { state: KeyRates; ttl: number } } => {
        live(rates, periodMs, now);
        rates.periodMs = periodMs;
        if (rates.started.some(([started]) => started === holder)) return { answer: { granted: true } };
        let position = rates.waiting.findIndex(([waiting]) => waiting === holder);
        const newcomer = position < 0;
        if (newcomer) position = rates.waiting.push([holder, Number.POSITIVE_INFINITY]) - 1;
        const free = limit - rates.started.length;
        if (position < free) {
          rates.waiting.splice(position, 1);
          rates.started.push([holder, now + UNREPORTED_START_MS]);
          if (!fitsItem(rates))
            throw new ConfigurationError(
              `The rate limit "${key}" (${limit} starts per ${periodMs} ms) keeps more starts than one DynamoDB item holds (${VERSIONED_STATE_BYTES} bytes, some 3,500 starts): lower the limit with a shorter period, or spread the starts over more keys.`,
            );
          return { answer: { granted: true }, write: { state: rates, ttl: ttlOf(rates) } };
        }
        const starts = rates.started.map(([, at]) => at);
        const retryAt = turnOf(starts, position - Math.max(0, free), periodMs, limit, now);
        (rates.waiting[position] as [string, number])[1] = retryAt + RATE_LINE_GRACE_MS;
        // A full line keeps no place for a newcomer: it is told its turn as if it stood at the end.
        if (newcomer && !fitsItem(rates)) {
          rates.waiting.pop();
          return { answer: { granted: false, retryAt } };
        }
        return { answer: { granted: false, retryAt }, write: { state: rates, ttl: ttlOf(rates) } };
      },
    );
  }

  async started(key: string, holder: string, at: number): Promise<void> {
    await this.items.change(ratesPk(key), RATES_SK, (rates) => {
      const start = rates.started.find(([started]) => started === holder);
      if (!start) return { answer: undefined };
      start[1] = at;
      return { answer: undefined, write: { state: rates, ttl: ttlOf(rates) } };
    });
  }

  async leave(key: string, holder: string): Promise<void> {
    await this.items.change(ratesPk(key), RATES_SK, (rates) => {
      const others = ([other]: [string, number]) => other !== holder;
      const state = {
        ...rates,
        started: rates.started.filter(others),
        waiting: rates.waiting.filter(others),
      };
      if (state.started.length + state.waiting.length === rates.started.length + rates.waiting.length)
        return { answer: undefined };
      return { answer: undefined, write: { state, ttl: ttlOf(state) } };
    });
  }

  async inspect(
    key: string,
    periodMs: number,
    now: number,
  ): Promise<{ started: string[]; waiting: string[] }> {
    const { state: rates } = await this.items.read(ratesPk(key), RATES_SK);
    live(rates, periodMs, now);
    return {
      started: rates.started.map(([holder]) => holder),
      waiting: rates.waiting.map(([holder]) => holder),
    };
  }
}

/** Drops the starts that left the window before `now` and the places in line that ran out. */
function live(rates: KeyRates, periodMs: number, now: number): void {
  rates.started = rates.started.filter(([, at]) => at > now - periodMs);
  rates.waiting = rates.waiting.filter(([, until]) => until > now);
}

/** When the item is of no use any more (epoch seconds, the table's TTL attribute). */
function ttlOf(rates: KeyRates): number {
  let last = 0;
  for (const [, at] of rates.started) last = Math.max(last, at + rates.periodMs);
  for (const [, until] of rates.waiting) last = Math.max(last, until);
  return Math.ceil(last / 1000) + TTL_MARGIN_SECONDS;
}
