/**
 * Redis URLs in checks and messages. Kept apart from the Redis modules so that the CLI and `configure()` can
 * use them without loading ioredis.
 */

/** `redis://user:secret@host:6379/0` → `redis://user:***@host:6379/0`, so messages never leak passwords. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
  }
}

/**
 * What is wrong with a Redis URL given by `source` (a flag, a variable, an option), or undefined for a
 * redis:// or rediss:// URL: anything else would fail only at the first connection, with an error naming neither.
 */
export function redisUrlProblem(url: string, source: string): string | undefined {
  if (/^rediss?:\/\//.test(url)) return undefined;
  return `${source} takes a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379; got ${JSON.stringify(redactUrl(url))}.`;
}
