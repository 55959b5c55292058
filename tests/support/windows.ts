/** The most of `times` (ms, in any order) that fall in any one window of `period` ms. */
export function mostInAWindow(times: readonly number[], period: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let first = 0, last = 0; last < sorted.length; last += 1) {
    while ((sorted[last] as number) - (sorted[first] as number) >= period) first += 1;
    most = Math.max(most, last - first + 1);
  }
  return most;
}
