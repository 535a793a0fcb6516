import cliProgress from 'cli-progress';

/** A stream the command line writes to (process.stderr, or a test's stand-in). */
export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** One file's line: its phase and percent. */
export interface FileProgress {
  update(phase: 'upload' | 'waiting' | 'processing' | 'done' | 'failed', percent: number): void;
}

/**
 * Progress bars on a terminal, one per file (cli-progress); nothing at all when the
 * stream is not a terminal (a pipe, a log, CI): there each file gets one line when done.
 */
export class Progress {
  private readonly bars: cliProgress.MultiBar | undefined;

  constructor(private readonly out: Output) {
    this.bars = out.isTTY
      ? new cliProgress.MultiBar(
          {
            stream: out as NodeJS.WriteStream,
            format: ' {bar} {percentage}% | {phase} | {file}',
            barsize: 30,
            hideCursor: true,
            clearOnComplete: false,
            // Redraw on changes only: a poll every half second is enough.
            fps: 10,
            etaBuffer: 20,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  }

  file(name: string): FileProgress {
    const bar = this.bars?.create(100, 0, { phase: 'upload', file: name });
    return {
      update: (phase, percent) => bar?.update(Math.max(0, Math.min(100, Math.floor(percent))), { phase }),
    };
  }

  /** A line that stays (a result, a warning): above the bars on a terminal. */
  log(line: string): void {
    if (this.bars) this.bars.log(`${line}\n`);
    else this.out.write(`${line}\n`);
  }

  stop(): void {
    this.bars?.stop();
  }
}
