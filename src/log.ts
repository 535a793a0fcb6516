/** Levels in increasing severity. */
export const logLevels = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof logLevels)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose lines carry `namespace` (http, jobs, engine, delivery, ...). */
  child(namespace: string): Logger;
  enabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level: LogLevel;
  /**
   * journald (JOURNAL_STREAM set): each line starts with a syslog priority prefix
   * ("<6>") that journald turns into the entry's priority, and no timestamp (the journal
   * has one). Otherwise: ISO timestamp and level, for a terminal.
   */
  journal?: boolean;
  write?: (line: string) => void;
}

// sd-daemon(3) priorities: 3 error, 4 warning, 6 info, 7 debug.
const priority: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'string') return /^[\w./:@+-]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  return JSON.stringify(value);
}

/** key=value pairs after the message (logfmt), so journal lines stay greppable. */
function formatFields(fields: LogFields | undefined): string {
  if (!fields) return '';
  let out = '';
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out += ` ${key}=${formatValue(value)}`;
  }
  return out;
}

/** Creates the process's logger; one line per entry on stdout by default. */
export function createLogger(options: LoggerOptions, namespace = 'earshot'): Logger {
  const journal = options.journal ?? Boolean(process.env.JOURNAL_STREAM);
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const threshold = logLevels.indexOf(options.level);
  const enabled = (level: LogLevel) => logLevels.indexOf(level) >= threshold;

  const log = (level: LogLevel, message: string, fields?: LogFields) => {
    if (!enabled(level)) return;
    const text = `${namespace}: ${message}${formatFields(fields)}`;
    write(journal ? `<${priority[level]}>${text}` : `${new Date().toISOString()} ${level.padEnd(5)} ${text}`);
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    child: (ns) => createLogger({ ...options, journal, write }, ns),
    enabled,
  };
}
