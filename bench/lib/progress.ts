/** A one-line progress bar on stderr (plain lines when stderr is not a terminal). */
export class Progress {
  private done = 0;
  private label = '';
  private readonly tty = process.stderr.isTTY === true;
  private readonly t0 = Date.now();
  private lastLine = '';

  constructor(private total: number) {}

  setTotal(n: number): void {
    this.total = Math.max(n, 1);
  }

  /** Starts the next unit of work (one workload on one system). */
  private unitStart = Date.now();

  begin(label: string): void {
    this.label = label;
    this.unitStart = Date.now();
    this.draw('');
  }

  note(detail: string): void {
    this.draw(detail);
  }

  end(): void {
    this.done = Math.min(this.done + 1, this.total);
    this.draw(`done in ${((Date.now() - this.unitStart) / 1000).toFixed(1)} s`);
    if (this.tty) process.stderr.write('\n');
  }

  /** Prints a line that stays (above the bar on a terminal). */
  log(line: string): void {
    if (this.tty) process.stderr.write(`\r\x1b[K${line}\n`);
    else process.stderr.write(`${line}\n`);
    if (this.tty && this.lastLine) process.stderr.write(this.lastLine);
  }

  finish(): void {
    if (this.tty) process.stderr.write('\n');
  }

  private draw(detail: string): void {
    const width = 24;
    const frac = this.total > 0 ? this.done / this.total : 0;
    const full = Math.round(frac * width);
    const secs = Math.round((Date.now() - this.t0) / 1000);
    const line = `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${this.done}/${this.total} ${secs}s ${this.label}${detail ? ` · ${detail}` : ''}`;
    this.lastLine = `\r\x1b[K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`;
    if (this.tty) process.stderr.write(this.lastLine);
    else process.stderr.write(`${line}\n`);
  }
}
