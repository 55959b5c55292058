/**
 * `redis://user:secret@host:6379/0` → `redis://user:***@host:6379/0`, so messages never leak passwords.
 * Kept apart from the Redis modules so that the CLI can use it without loading ioredis.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
  }
}
