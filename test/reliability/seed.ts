// The reliability suites are random but reproducible: each run draws a seed (or takes
// EARSHOT_FUZZ_SEED to replay one) and prints it, and every random choice derives from it.
// Their sizes can be raised for longer runs off CI with the variables named below.

/** Prints through tap (`# ...` lines) and to stderr, so the seed is in every log. */
export interface Printer {
  comment(...message: unknown[]): void;
}

/** The seed of this run, printed with the command that replays it. */
export function fuzzSeed(t: Printer, suite: string): number {
  const given = process.env.EARSHOT_FUZZ_SEED;
  const seed = given !== undefined && given !== '' ? Number(given) : Math.floor(Math.random() * 0x7fffffff);
  if (!Number.isSafeInteger(seed)) throw new Error(`EARSHOT_FUZZ_SEED must be an integer, got ${JSON.stringify(given)}`);
  report(t, `${suite}: seed ${seed} (replay: EARSHOT_FUZZ_SEED=${seed} npm run test:reliability)`);
  return seed;
}

/** A count from the environment (for longer runs), else the default. */
export function fuzzCount(variable: string, fallback: number): number {
  const given = process.env[variable];
  if (given === undefined || given === '') return fallback;
  const n = Number(given);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${variable} must be a positive integer, got ${JSON.stringify(given)}`);
  return n;
}

/** A line for the run's log: a tap comment and stderr (tap's reporter hides passing tests' comments). */
export function report(t: Printer, line: string): void {
  t.comment(line);
  process.stderr.write(`${line}\n`);
}

/** A small seeded generator (mulberry32) for choices outside fast-check's arbitraries. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
