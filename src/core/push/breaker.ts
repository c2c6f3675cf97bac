/**
 * A circuit breaker per push provider (R29): after `threshold` failures in a
 * row (5xx, timeouts, refused connections) the provider gets nothing for
 * `cooldownMs`; then one request probes it, and its outcome closes the breaker
 * or opens it again. Answers that show the provider is up (a push sent, a token
 * gone, a payload refused) count as successes.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  state: BreakerState = 'closed';

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly onChange: (state: BreakerState) => void = () => undefined,
  ) {}

  /**
   * Milliseconds before a request may go; 0 when one may go now (and, in
   * half-open, it is the probe: others wait until it has answered).
   */
  wait(now: number): number {
    if (this.state === 'open') {
      const left = this.openedAt + this.cooldownMs - now;
      if (left > 0) return left;
      this.set('half-open');
      this.probing = false;
    }
    if (this.state === 'half-open') {
      if (this.probing) return Math.max(1, Math.min(this.cooldownMs, 1000));
      this.probing = true;
    }
    return 0;
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    if (this.state !== 'closed') this.set('closed');
  }

  failure(now: number): void {
    this.failures++;
    if (this.state === 'half-open' || (this.state === 'closed' && this.failures >= this.threshold)) {
      this.openedAt = now;
      this.probing = false;
      this.set('open');
    }
  }

  private set(state: BreakerState): void {
    this.state = state;
    this.onChange(state);
  }
}
