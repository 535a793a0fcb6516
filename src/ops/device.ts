import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { projectRoot } from '../paths.js';

/** What the device's page shows of the device (`GET /device`). */
export interface DeviceInfo {
  version: string;
  /** The model file's name (`ggml-tiny.en-q5_1.bin`). */
  model: string;
  /** Whether the model is loaded; languages are known only then. */
  modelLoaded: boolean;
  multilingual?: boolean;
  languages?: readonly string[];
  /** whisper's size (`tiny`, `base`, ...) and the weights' type (`q5_1`). */
  modelType?: string;
  weightType?: string;
  /** The board's name from the device tree (`Raspberry Pi 5 Model B Rev 1.0`), else the CPU's. */
  board: string;
  arch: string;
  cpus: number;
  /** °C, from the first thermal zone; absent where there is none. */
  cpuTemperature?: number;
  /** vcgencmd get_throttled, decoded; absent without vcgencmd. */
  throttling?: { raw: string; now: string[]; sinceBoot: string[] };
  /** Seconds. */
  uptime: { system: number; service: number };
  memory: { totalBytes: number; freeBytes: number };
  disk: { freeBytes: number; floorBytes: number };
  jobs: Record<string, number>;
  /** `none` when the device asks for no key (EARSHOT_AUTH=none). */
  auth: 'key' | 'none';
  /** On a fleet device (EARSHOT_FLEET_URL): the link to the fleet's broker, as /readyz says it. */
  fleet?: 'connecting' | 'connected' | 'unreachable';
}

/** Where the readings come from (the defaults read the machine; tests give their own). */
export interface DeviceSources {
  readFile(file: string): string | undefined;
  /** vcgencmd's `get_throttled` output, or undefined where there is no vcgencmd. */
  throttled(): Promise<string | undefined>;
}

const readOptional = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

const vcgencmd = ['/usr/bin/vcgencmd', '/opt/vc/bin/vcgencmd'];

export const systemSources: DeviceSources = {
  readFile: readOptional,
  throttled: () => {
    const tool = vcgencmd.find((file) => existsSync(file));
    if (!tool) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      execFile(tool, ['get_throttled'], { timeout: 2000 }, (err, stdout) => resolve(err ? undefined : stdout));
    });
  },
};

/** The bits of `get_throttled` (Raspberry Pi documentation, "vcgencmd"). */
const throttleBits: Array<[number, string]> = [
  [0, 'under-voltage'],
  [1, 'ARM frequency capped'],
  [2, 'throttled'],
  [3, 'soft temperature limit'],
];

/** Decodes `throttled=0x50005` into what is happening now and what happened since boot. */
export function decodeThrottled(output: string): DeviceInfo['throttling'] | undefined {
  const m = /throttled=(0x[0-9a-f]+)/i.exec(output);
  if (!m) return undefined;
  const value = Number.parseInt(m[1]!, 16);
  const names = (offset: number) => throttleBits.filter(([bit]) => value & (1 << (bit + offset))).map(([, name]) => name);
  return { raw: m[1]!, now: names(0), sinceBoot: names(16) };
}

let version: string | undefined;
const packageVersion = () => (version ??= (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version);

export interface DeviceState {
  modelFile: string;
  model: { multilingual: boolean; languages: readonly string[]; type: string; weightType: string } | undefined;
  disk: { free(): number; floorBytes: number };
  jobs: () => Record<string, number>;
  auth: 'key' | 'none';
  fleet?: DeviceInfo['fleet'];
}

/** Reads the device's state now (a few small files and at most one vcgencmd call). */
export async function deviceInfo(state: DeviceState, sources: DeviceSources = systemSources): Promise<DeviceInfo> {
  const board = sources.readFile('/proc/device-tree/model')?.replace(/\0/g, '').trim() || os.cpus()[0]?.model || os.machine();
  const millidegrees = Number(sources.readFile('/sys/class/thermal/thermal_zone0/temp')?.trim());
  const throttled = await sources.throttled();
  const throttling = throttled === undefined ? undefined : decodeThrottled(throttled);
  return {
    version: packageVersion(),
    model: path.basename(state.modelFile),
    modelLoaded: state.model !== undefined,
    ...(state.model
      ? { multilingual: state.model.multilingual, languages: state.model.languages, modelType: state.model.type, weightType: state.model.weightType }
      : {}),
    board,
    arch: os.arch(),
    cpus: os.availableParallelism(),
    ...(Number.isFinite(millidegrees) && millidegrees !== 0 ? { cpuTemperature: Math.round(millidegrees / 100) / 10 } : {}),
    ...(throttling ? { throttling } : {}),
    uptime: { system: Math.round(os.uptime()), service: Math.round(process.uptime()) },
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    disk: { freeBytes: state.disk.free(), floorBytes: state.disk.floorBytes },
    jobs: state.jobs(),
    auth: state.auth,
    ...(state.fleet ? { fleet: state.fleet } : {}),
  };
}
