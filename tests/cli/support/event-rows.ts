/** The seqs of the event rows that `tsworkflow runs events` printed (its table's lines that begin with one). */
export function printedSeqs(stdout: string): number[] {
  return stdout
    .split("\n")
    .filter((line) => /^\d+ /.test(line))
    .map((line) => Number(line.split(" ")[0]));
}

/** The seqs `from` to `to`, both in. */
export function seqRange(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, index) => from + index);
}
