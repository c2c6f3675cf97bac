/**
 * Latency histogram with log-spaced buckets (about 0.55% wide), so workers can
 * send a fixed-size array to the runner and the runner can merge them exactly.
 * Values are microseconds; the exact max is kept beside the buckets.
 */
const SUB = 128; // buckets per doubling: 2^(1/128) ≈ 1.0054
const OCTAVES = 32; // up to 2^32 µs ≈ 71 minutes
export const HIST_SIZE = SUB * OCTAVES;

export interface HistogramData {
  /** [bucket index, count] for the non-empty buckets only. */
  buckets: [number, number][];
  count: number;
  max: number;
  sum: number;
}

export class Histogram {
  readonly buckets = new Float64Array(HIST_SIZE);
  count = 0;
  max = 0;
  sum = 0;

  record(us: number): void {
    const v = us < 0 ? 0 : us;
    let i = Math.floor(Math.log2(v + 1) * SUB);
    if (i >= HIST_SIZE) i = HIST_SIZE - 1;
    this.buckets[i] = (this.buckets[i] ?? 0) + 1;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  merge(d: HistogramData): void {
    for (const [i, n] of d.buckets) this.buckets[i] = (this.buckets[i] ?? 0) + n;
    this.count += d.count;
    this.sum += d.sum;
    if (d.max > this.max) this.max = d.max;
  }

  /** Upper edge of the bucket holding the q-quantile, capped by the exact max. */
  percentile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < HIST_SIZE; i++) {
      seen += this.buckets[i] ?? 0;
      if (seen >= rank) return Math.min(2 ** ((i + 1) / SUB) - 1, this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  toJSON(): HistogramData {
    // Sparse, because most of the 4,096 buckets are empty and this crosses IPC.
    const buckets: [number, number][] = [];
    for (let i = 0; i < HIST_SIZE; i++) {
      const n = this.buckets[i] ?? 0;
      if (n > 0) buckets.push([i, n]);
    }
    return { buckets, count: this.count, max: this.max, sum: this.sum };
  }

  reset(): void {
    this.buckets.fill(0);
    this.count = 0;
    this.max = 0;
    this.sum = 0;
  }
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export function summarize(h: Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    count: h.count,
    p50Ms: ms(h.percentile(0.5)),
    p95Ms: ms(h.percentile(0.95)),
    p99Ms: ms(h.percentile(0.99)),
    maxMs: ms(h.max),
    meanMs: ms(h.mean()),
  };
}
