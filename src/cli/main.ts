#!/usr/bin/env node
// earshot's command line: transcribe files on a device and look after it, through the
// device's public HTTP API. `earshot help` lists the commands.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { CliError, Client } from './client.js';
import { deliveries, jobs, status } from './commands.js';
import { deviceKey } from './key.js';
import type { Output } from './progress.js';
import { type Format, formats, transcribe } from './transcribe.js';

export const usage = `Usage: earshot COMMAND [options]

  transcribe FILE…   transcribe audio files on the device
      -f, --format txt|srt|vtt|json   what to write (default txt)
      -l, --language L                a whisper language code, or auto
      -o, --output -|DIR              stdout, or a directory (default: beside each file, FILE.txt …)
  jobs               the device's newest jobs
  status             whether the device is ready: model, queue, deliveries, disk
  deliveries         pending and dead callbacks and web hook deliveries
      --dead                          only the dead letters
      --delivered                     only the recently delivered (newest first)
      --redeliver ID                  send a dead letter again
  key                print the device's API key (on the device, as root)

Options of every command:
  --url URL     the device (default $EARSHOT_URL, else http://localhost:8080)
  --key KEY     its API key (default $EARSHOT_API_KEY)
  --json        machine-readable output (jobs, status, deliveries)
  -h, --help    this text
`;

export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
}

const options = {
  url: { type: 'string' },
  key: { type: 'string' },
  format: { type: 'string', short: 'f' },
  language: { type: 'string', short: 'l' },
  output: { type: 'string', short: 'o' },
  dead: { type: 'boolean' },
  delivered: { type: 'boolean' },
  redeliver: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** What a command may be given beyond the common options. */
const allowed: Record<string, Array<keyof typeof options>> = {
  transcribe: ['format', 'language', 'output'],
  jobs: ['json'],
  status: ['json'],
  deliveries: ['dead', 'delivered', 'redeliver', 'json'],
  key: [],
};
const common: Array<keyof typeof options> = ['url', 'key', 'help'];

/** Runs one command line; resolves with the process's exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
    try {
      parsed = parseArgs({ args: argv, options, allowPositionals: true });
    } catch (err) {
      throw new CliError(`${(err as Error).message}\n\n${usage}`, 2);
    }
    const { values, positionals } = parsed;
    const [command, ...rest] = positionals;
    if (values.help || command === 'help' || command === undefined) {
      (command === undefined && !values.help ? io.stderr : io.stdout).write(usage);
      return command === undefined && !values.help ? 2 : 0;
    }
    if (!(command in allowed)) throw new CliError(`Unknown command '${command}'.\n\n${usage}`, 2);
    const extra = Object.keys(values).filter((k) => !common.includes(k as keyof typeof options) && !allowed[command]!.includes(k as keyof typeof options));
    if (extra.length) throw new CliError(`earshot ${command} takes no --${extra.join(', --')}.\n\n${usage}`, 2);
    if (command !== 'transcribe' && rest.length) throw new CliError(`earshot ${command} takes no arguments (got ${rest.join(' ')}).`, 2);

    if (command === 'key') {
      io.stdout.write(`${deviceKey(io.env).key}\n`);
      return 0;
    }
    const [url, urlSource] = values.url
      ? [values.url, '--url']
      : io.env.EARSHOT_URL
        ? [io.env.EARSHOT_URL, 'EARSHOT_URL']
        : ['http://localhost:8080', 'the default; set EARSHOT_URL'];
    const key = values.key ?? (io.env.EARSHOT_API_KEY || undefined);
    const client = new Client({ url, urlSource, ...(key ? { key } : {}) });
    switch (command) {
      case 'transcribe': {
        const format = (values.format ?? 'txt') as Format;
        if (!formats.includes(format)) throw new CliError(`--format must be one of ${formats.join(', ')} (got '${values.format}')`, 2);
        const failed = await transcribe({
          files: rest.map((f) => path.normalize(f)),
          format,
          ...(values.language ? { language: values.language } : {}),
          ...(values.output ? { output: values.output } : {}),
          client,
          stdout: io.stdout,
          stderr: io.stderr,
        });
        return failed ? 1 : 0;
      }
      case 'jobs':
        await jobs(client, io.stdout, values.json ?? false);
        return 0;
      case 'status':
        await status(client, io.stdout, values.json ?? false);
        return 0;
      case 'deliveries':
        await deliveries(client, io.stdout, {
          dead: values.dead ?? false,
          delivered: values.delivered ?? false,
          json: values.json ?? false,
          ...(values.redeliver ? { redeliver: values.redeliver } : {}),
        });
        return 0;
    }
    return 2;
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`earshot: ${err.message}\n`);
      return err.exitCode;
    }
    io.stderr.write(`earshot: unexpected failure: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

// Run when executed (the package's bin, /usr/local/bin/earshot), not when imported by tests.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.once('SIGINT', () => {
    // The bars hide the cursor; the device keeps the jobs already uploaded (earshot jobs).
    if (process.stderr.isTTY) process.stderr.write('\x1b[?25h\n');
    process.exit(130);
  });
  process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
}
