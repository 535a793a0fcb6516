import { createRequire } from 'node:module';
import path from 'node:path';

import { AppError } from '../errors.js';

export type Uws = typeof import('uWebSockets.js');

/**
 * The uWebSockets.js builds earshot ships (both pinned in package.json under their own
 * names), newest first: the first one that has a binary for this system is the one that
 * loads. v20.57 has Node 20/22/24/25 but its binaries need glibc 2.38 (Debian 13 trixie);
 * v20.30 has Node 18/20 and runs on older glibc (Debian 12 bookworm: 2.36).
 */
export const uwsBuilds = [
  {
    packageName: 'uWebSockets.js-v20.57',
    version: '20.57.0',
    /** Where the binaries are, relative to the directory of the package's main file. */
    binaryDir: '.',
    abis: { '115': 'Node 20', '127': 'Node 22', '137': 'Node 24', '141': 'Node 25' },
    arches: ['x64', 'arm64'],
    minGlibc: '2.38',
  },
  {
    packageName: 'uWebSockets.js',
    version: '20.30.0',
    binaryDir: '../binaries',
    abis: { '108': 'Node 18', '115': 'Node 20' },
    arches: ['x64', 'arm64', 'arm'],
    // The newest symbol version its linux binaries use (GLIBC_2.27 on x64 and arm64).
    minGlibc: '2.28',
  },
] as const;

export type UwsBuild = (typeof uwsBuilds)[number];

/** The request line and headers uWebSockets.js v20.57 takes before answering 431 itself. */
export const maxHeadersBytes = 16 * 1024;

/** What decides which build loads: process.platform, process.arch, the Node ABI, glibc. */
export interface UwsSystem {
  platform: string;
  arch: string;
  /** process.versions.modules */
  abi: string;
  /** glibc's version at run time ("2.36"); undefined on musl and other non-glibc systems. */
  glibc: string | undefined;
}

export type UwsChoice = { ok: true; build: UwsBuild; binaryName: string } | { ok: false; reason: string; solutions: string[] };

function versionAtLeast(have: string, want: string): boolean {
  const a = have.split('.').map(Number);
  const b = want.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (Number.isNaN(d)) return false;
    if (d !== 0) return d > 0;
  }
  return true;
}

function abiName(abi: string): string {
  for (const b of uwsBuilds) {
    const name = (b.abis as Record<string, string>)[abi];
    if (name) return `${name} (ABI ${abi})`;
  }
  return `Node ABI ${abi}`;
}

/**
 * Chooses the uWebSockets.js build for a system, or says why none fits and what would.
 * Pure: the caller passes in what it found about the process.
 */
export function chooseUws(system: UwsSystem): UwsChoice {
  const { platform, arch, abi, glibc } = system;
  const where = `${abiName(abi)} on ${platform}-${arch}${glibc ? ` with glibc ${glibc}` : ''}`;
  if (platform !== 'linux') {
    return { ok: false, reason: `earshot runs on Linux only, not ${platform}`, solutions: ['Run earshot on Linux (Raspberry Pi OS or Debian)'] };
  }
  if (glibc === undefined) {
    return {
      ok: false,
      reason: `uWebSockets.js's Linux binaries need glibc; this ${platform}-${arch} system has none (musl?)`,
      solutions: ['Use a glibc-based distribution: Raspberry Pi OS or Debian 12/13'],
    };
  }
  const forArch = uwsBuilds.filter((b) => (b.arches as readonly string[]).includes(arch));
  if (forArch.length === 0) {
    return {
      ok: false,
      reason: `no uWebSockets.js build has binaries for ${platform}-${arch}`,
      solutions: ['Use a 64-bit system: linux-arm64 (64-bit Raspberry Pi OS) or linux-x64'],
    };
  }
  const forAbi = forArch.filter((b) => abi in b.abis);
  const fits = forAbi.find((b) => versionAtLeast(glibc, b.minGlibc));
  if (fits) {
    return { ok: true, build: fits, binaryName: `uws_${platform}_${arch}_${abi}.node` };
  }
  if (forAbi.length > 0) {
    // A build exists for this Node but not for this glibc: v20.57 on bookworm.
    const need = forAbi.map((b) => b.minGlibc).sort((x, y) => (versionAtLeast(x, y) ? 1 : -1))[0];
    const older = forArch.filter((b) => versionAtLeast(glibc, b.minGlibc)).flatMap((b) => Object.values(b.abis as Record<string, string>));
    return {
      ok: false,
      reason: `uWebSockets.js for ${abiName(abi)} needs glibc ${need} or newer; this system has glibc ${glibc}`,
      solutions: [
        ...(older.length > 0 ? [`On this system, use ${[...new Set(older)].join(' or ')} (Debian 12 / Raspberry Pi OS bookworm)`] : []),
        `Or upgrade to glibc ${need} or newer (Debian 13 / Raspberry Pi OS trixie)`,
      ],
    };
  }
  const nodes = [...new Set(forArch.flatMap((b) => Object.values(b.abis as Record<string, string>)))];
  return {
    ok: false,
    reason: `no uWebSockets.js build has a binary for ${where}`,
    solutions: [`Use one of ${nodes.join(', ')}`],
  };
}

/** This process's system, as chooseUws wants it. */
export function thisSystem(): UwsSystem {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return { platform: process.platform, arch: process.arch, abi: process.versions.modules, glibc: header?.glibcVersionRuntime };
}

/** The loaded module, the build it came from and the binary's path. */
export interface LoadedUws {
  uws: Uws;
  build: UwsBuild;
  binary: string;
}

function loadError(system: UwsSystem, reason: string, solutions: string[]): AppError {
  return new AppError(
    'ERR_ADDON_LOAD',
    [
      `Could not load uWebSockets.js's native server for ${system.platform}-${system.arch}, Node ABI ${system.abi}, glibc ${system.glibc ?? 'none'}:`,
      `- ${reason}`,
      'earshot does not run on a slow JavaScript fallback. Possible solutions:',
      ...solutions.map((s) => `- ${s}`),
    ].join('\n'),
  );
}

/**
 * Loads the native binary of the uWebSockets.js build that fits this system (chooseUws),
 * directly: the packages' own entry points may quietly fall back to a slow pure-JS server
 * (v20.30 does when the binary does not load, and whenever UWS_USE_FALLBACK is set);
 * earshot refuses to run on that instead, with the reason and the fix.
 */
export function loadUws(system: UwsSystem = thisSystem()): LoadedUws {
  const choice = chooseUws(system);
  if (!choice.ok) throw loadError(system, choice.reason, choice.solutions);
  const { build, binaryName } = choice;
  // v20.57 answers a request whose line and headers exceed UWS_HTTP_MAX_HEADERS_SIZE (4 KB
  // unless set) with its own 431 and no error shape of a dialect; IBM's query strings (a
  // callback URL, a user token, a dozen parameters) can be longer. Node's own limit, 16 KB,
  // unless the operator set one; v20.30 has no such limit of its own (it takes tens of KB).
  process.env.UWS_HTTP_MAX_HEADERS_SIZE ||= String(maxHeadersBytes);
  const require = createRequire(import.meta.url);
  let binary = `${build.packageName}/${binaryName}`;
  try {
    // The main file, not package.json: v20.57's "exports" does not list package.json.
    binary = path.join(path.dirname(require.resolve(build.packageName)), build.binaryDir, binaryName);
    return { uws: require(binary) as Uws, build, binary };
  } catch (err) {
    throw loadError(system, `${binary}: ${(err as Error).message.split('\n')[0]}`, [
      'Reinstall dependencies: npm install (both uWebSockets.js packages are in package.json)',
    ]);
  }
}
