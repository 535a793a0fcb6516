// The headline figures of a benchmark run, each with its target where the issues set one:
// one JSON and one Markdown table per run (`npm run bench`), whatever suites it ran.

export interface Figure {
  suite: string;
  name: string;
  value: number;
  unit: string;
  /** Met when `value op target` holds. */
  target?: { op: '≥' | '≤' | '<'; value: number };
}

/** Whether the figure meets its target; undefined when it has none. */
export function met(f: Figure): boolean | undefined {
  if (!f.target) return undefined;
  const { op, value } = f.target;
  return op === '≥' ? f.value >= value : op === '≤' ? f.value <= value : f.value < value;
}

const digits = (x: number) => (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2);

/** A Markdown table: suite, figure, value, target, met. */
export function figuresTable(figures: readonly Figure[]): string {
  const rows = figures.map((f) => {
    const ok = met(f);
    const target = f.target ? `${f.target.op} ${f.target.value} ${f.unit}` : '';
    return `| ${f.suite} | ${f.name} | ${f.value.toFixed(digits(f.value))} ${f.unit} | ${target} | ${ok === undefined ? '' : ok ? 'yes' : '**no**'} |`;
  });
  return ['| suite | figure | value | target | met |', '|---|---|---:|---|---|', ...rows].join('\n');
}
