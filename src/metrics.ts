/**
 * A small Prometheus registry: counters and histograms that parts of earshot update, and
 * gauges read from their owners when /metrics is scraped.
 */
type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (!entries.length) return '';
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

export class Counter {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels)) ?? 0;
  }
  render(): string[] {
    return [...this.values].map(([labels, value]) => `${this.name}${labels} ${value}`);
  }
}

export class Histogram {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    private readonly buckets: number[],
  ) {}
  observe(value: number, labels: Labels = {}): void {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    this.buckets.forEach((bound, i) => {
      if (value <= bound) s!.counts[i]!++;
    });
    s.sum += value;
    s.count++;
  }
  render(): string[] {
    const lines: string[] = [];
    for (const [key, s] of this.series) {
      const inner = key.slice(1, -1);
      const withLe = (le: string) => `{${inner ? `${inner},` : ''}le="${le}"}`;
      this.buckets.forEach((bound, i) => {
        lines.push(`${this.name}_bucket${withLe(String(bound))} ${s.counts[i]}`);
      });
      lines.push(`${this.name}_bucket${withLe('+Inf')} ${s.count}`);
      lines.push(`${this.name}_sum${key} ${s.sum}`);
      lines.push(`${this.name}_count${key} ${s.count}`);
    }
    return lines;
  }
}

export class Metrics {
  private readonly families: Family[] = [];

  counter(name: string, help: string): Counter {
    const c = new Counter(name);
    this.families.push({ name, help, type: 'counter', render: () => c.render() });
    return c;
  }

  histogram(name: string, help: string, buckets: number[]): Histogram {
    const h = new Histogram(name, buckets);
    this.families.push({ name, help, type: 'histogram', render: () => h.render() });
    return h;
  }

  /** A gauge whose value(s) are read at scrape time. */
  gauge(name: string, help: string, read: () => number | Array<[Labels, number]>): void {
    this.read(name, help, 'gauge', read);
  }

  /** A counter its owner keeps (a total since start), read at scrape time. */
  counterRead(name: string, help: string, read: () => number): void {
    this.read(name, help, 'counter', read);
  }

  private read(name: string, help: string, type: Family['type'], read: () => number | Array<[Labels, number]>): void {
    this.families.push({
      name,
      help,
      type,
      render: () => {
        const v = read();
        return typeof v === 'number' ? [`${name} ${v}`] : v.map(([labels, value]) => `${name}${labelText(labels)} ${value}`);
      },
    });
  }

  /** The Prometheus text exposition format (version 0.0.4). */
  render(): string {
    const out: string[] = [];
    for (const f of this.families) {
      out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.render());
    }
    return `${out.join('\n')}\n`;
  }
}
