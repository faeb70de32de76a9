/** A small seeded PRNG (mulberry32): the same sequence on every machine, so a failing run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seed from the environment variable `name`: a number replays that run, `random` picks a new one
 * (print it: it is the way back), unset gives `fixed`, so CI runs the same sequence every time.
 */
export function seedFromEnv(name: string, fixed: number): number {
  const text = process.env[name]?.trim();
  if (!text) return fixed;
  if (text === 'random') return Math.floor(Math.random() * 1_000_000_000);
  if (!/^\d+$/.test(text)) throw new Error(`${name} must be a whole number or "random", not ${JSON.stringify(text)}`);
  return Number(text);
}
