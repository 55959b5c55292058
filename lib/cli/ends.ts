/**
 * A long list shown by its ends: the first and the last `each` items, and how many fall between them. A run of
 * a 5,000-item `map` has 5,000 timeline rows and 10,000 events: printed or rendered whole, they take seconds
 * and megabytes to show what the ends and a count say.
 */
export interface Ends<T> {
  head: T[];
  /** How many items fall between `head` and `tail` (0: the list is whole in `head`). */
  hidden: number;
  tail: T[];
}

/** The list whole when it has at most `2 × each` items, else its ends. */
export function endsOf<T>(items: readonly T[], each: number): Ends<T> {
  if (items.length <= 2 * each) return { head: [...items], hidden: 0, tail: [] };
  return { head: items.slice(0, each), hidden: items.length - 2 * each, tail: items.slice(-each) };
}
