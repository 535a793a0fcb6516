import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { apiKeyProblem } from './api-key.js';
import { defaultRetryDelaysMs } from './delivery/backoff.js';
import { CidrPolicy } from './delivery/cidr.js';
import { AppError } from './errors.js';
import { canonicalHost } from './http/host-check.js';
import { logLevels, type LogLevel } from './log.js';

/** earshot's settings after defaults, the config file and the environment are merged. */
export interface Config {
  host: string;
  port: number;
  /** LMDB environment and audio spool live here. */
  stateDir: string;
  /** The model as configured: a path, or a name looked up in modelsDir. */
  model: string;
  /** The model file the engine loads. */
  modelPath: string;
  modelsDir: string;
  threads: number;
  /** Unset: generated on first start and stored in the state directory. */
  apiKey: string | undefined;
  auth: 'key' | 'none';
  /** With auth `none`: names or addresses, besides the device's own, that clients may use in Host. */
  allowedHosts: string[];
  /** Where callbacks and webhooks may be delivered. */
  callbackCidrs: string[];
  /** The Wyoming server's TCP port (on `host`); 0: any free port; undefined: no Wyoming server. */
  wyomingPort: number | undefined;
  /** The peers the Wyoming server answers (the protocol has no authentication). */
  wyomingCidrs: string[];
  /** At most this many IBM callback URLs, and as many Azure web hooks. */
  maxHooks: number;
  /** An Azure web hook whose every delivery failed this long turns Failed. */
  hookFailureHours: number;
  /** Whether GET /metrics needs the API key. */
  metricsAuth: 'none' | 'key';
  logLevel: LogLevel;
  /** nice increment of the inference threads, so HTTP stays responsive during inference. */
  inferenceNice: number;
  flashAttn: boolean;
  /** Audio is transcribed in windows of this many seconds (bounds memory for long files). */
  windowSeconds: number;
  /** Waiting jobs beyond this are refused with 503 before their upload is read. */
  maxQueued: number;
  /** Longer audio fails its job with ERR_AUDIO_TOO_LONG. */
  maxAudioSeconds: number;
  /** IBM's X-Callback-Signature: HMAC-SHA1 (the documented contract) or HMAC-SHA256 (IBM since 2025). */
  ibmSignature: 'sha1' | 'sha256';
  /**
   * whisper's temperature fallback: re-decode a window at higher temperatures when the
   * result looks wrong. Better text on hard audio, up to several times the decode time.
   */
  temperatureFallback: boolean;
  /**
   * Encoder trimming: for audio shorter than 30 s (a voice command), whisper's encoder
   * runs over the clip plus a 2 s margin instead of the 30 s it pads every window to.
   * Several times faster on short clips; off by default until its accuracy is measured
   * on real weights (README, "Short audio").
   */
  trimEncoder: boolean;
  /**
   * A Silero VAD model (path, or name in modelsDir like `silero-v5.1.2`): when set, jobs
   * skip the non-speech parts of their audio (faster, fewer hallucinations in silence).
   */
  vadModel: string | undefined;
  vadModelPath: string | undefined;
  /** Largest upload accepted (IBM: 1 GB); lower it on a small SD card. */
  maxUploadBytes: number;
  /** Uploads are refused (507) while they would leave less than this free on the state directory; jobs wait below it. */
  minFreeBytes: number;
  /** Waits between delivery attempts after each failure; after the last, a dead letter. */
  retryDelaysMs: number[];
  /** Per delivery attempt: connect, response, body. */
  deliveryTimeoutMs: number;
  /** The running job without progress (decoder output, a whisper chunk) this long stops the systemd watchdog pings, whatever the audio's length. */
  stallSeconds: number;
  /** `optional`: decode even where the decoder cannot install its seccomp filter (qemu-user). */
  decoderSandbox: 'required' | 'optional';
  /** The fleet's NATS broker (`nats://` or `tls://` URLs, comma-separated); undefined: a single device (docs/fleet.md). */
  fleetUrl: string | undefined;
  /** A fleet job unacknowledged this long goes to another device (the consumer's AckWait). */
  fleetAckWaitSeconds: number;
  /** A NATS credentials file (user JWT and NKey seed) for the broker. */
  fleetCreds: string | undefined;
  /** A token for the broker's `authorization { token }`. */
  fleetToken: string | undefined;
  /** TLS to the broker: the CA of its certificate; this device's certificate and key (mutual TLS). */
  fleetTlsCa: string | undefined;
  fleetTlsCert: string | undefined;
  fleetTlsKey: string | undefined;
}

type Raw = string | number | boolean | string[];

interface Setting<K extends keyof Config> {
  key: K;
  env: string;
  /** What it means, for the README's settings table. */
  doc: string;
  /** The default as the README shows it, where the value itself would mislead (a path, a count). */
  shown?: string;
  default: (partial: Partial<Config>) => Config[K];
  parse: (value: Raw) => Config[K];
  /** A secret: a problem with it is reported without its value (the journal keeps stderr). */
  secret?: true;
}

class SettingError extends Error {}

const text = (value: Raw): string => {
  if (typeof value !== 'string' || value.trim() === '') throw new SettingError('must be a non-empty string');
  return value.trim();
};

const integer =
  (min: number, max: number) =>
  (value: Raw): number => {
    const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new SettingError(`must be an integer from ${min} to ${max}`);
    return n;
  };

const boolean = (value: Raw): boolean => {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(1|true|yes|on)$/i.test(value.trim())) return true;
  if (typeof value === 'string' && /^(0|false|no|off)$/i.test(value.trim())) return false;
  throw new SettingError('must be true or false');
};

const oneOf =
  <T extends string>(choices: readonly T[]) =>
  (value: Raw): T => {
    if (typeof value === 'string' && (choices as readonly string[]).includes(value.trim())) return value.trim() as T;
    throw new SettingError(`must be one of ${choices.join(', ')}`);
  };

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const durationList = (value: Raw): number[] => {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : null;
  if (!items) throw new SettingError('must be a comma-separated list of durations such as 5s,5m,2h');
  return items
    .map((s) => String(s).trim())
    .filter(Boolean)
    .map((item) => {
      const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(item);
      if (!m) throw new SettingError(`"${item}" is not a duration such as 500ms, 5s, 5m or 2h`);
      return Number(m[1]) * durationUnits[m[2]!]!;
    });
};

const apiKey = (value: Raw): string => {
  const key = text(value);
  const problem = apiKeyProblem(key);
  if (problem) throw new SettingError(problem);
  return key;
};

const cidrList = (value: Raw): string[] => {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : null;
  if (!items) throw new SettingError('must be a comma-separated list of CIDR ranges');
  const cidrs = items.map((s) => String(s).trim()).filter(Boolean);
  try {
    new CidrPolicy(cidrs);
  } catch (err) {
    throw new SettingError((err as Error).message);
  }
  return cidrs;
};

const portOrOff = (value: Raw): number | undefined => {
  if (value === false || (typeof value === 'string' && value.trim().toLowerCase() === 'off')) return undefined;
  try {
    return integer(0, 65535)(value);
  } catch {
    throw new SettingError('must be a port from 0 to 65535, or off');
  }
};

const hostList = (value: Raw): string[] => {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : null;
  if (!items) throw new SettingError('must be a comma-separated list of host names or addresses');
  return items
    .map((s) => String(s).trim())
    .filter(Boolean)
    .map((item) => {
      const host = canonicalHost(item);
      if (host === undefined) throw new SettingError(`"${item}" is not a host name or address (such as pi.example.lan or 192.0.2.7)`);
      return host;
    });
};

const natsUrls = (value: Raw): string => {
  const urls = text(value)
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  for (const url of urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new SettingError(`"${url}" is not a URL such as nats://broker.lan:4222`);
    }
    if (parsed.protocol !== 'nats:' && parsed.protocol !== 'tls:') throw new SettingError(`"${url}" must start with nats:// or tls://`);
  }
  return urls.join(',');
};

const existingFile = (value: Raw): string => {
  const file = path.resolve(text(value));
  if (!existsSync(file)) throw new SettingError(`${file} does not exist`);
  return file;
};

/** RFC 1918 and RFC 4193 ranges: the LAN, never loopback or link-local. */
export const defaultCallbackCidrs = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'];

/**
 * The peers a Wyoming server answers by default: the LAN (RFC 1918, RFC 4193, link-local,
 * where Home Assistant lives) and this device itself. The protocol has no authentication.
 */
export const defaultWyomingCidrs = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7', '169.254.0.0/16', 'fe80::/10', '127.0.0.0/8', '::1/128'];

/** A model name (looked up in the models directory) or a path. */
export function resolveModelPath(model: string, modelsDir: string): string {
  if (model.includes('/') || model.endsWith('.bin')) return path.resolve(model);
  return path.join(modelsDir, `ggml-${model}.bin`);
}

// The settings in the order they are documented (README "Settings", generated from here).
const settings = [
  { key: 'host', env: 'EARSHOT_HOST', doc: 'address to listen on', default: () => '0.0.0.0', parse: text },
  { key: 'port', env: 'EARSHOT_PORT', doc: 'TCP port', default: () => 8080, parse: integer(0, 65535) },
  {
    key: 'stateDir',
    env: 'EARSHOT_STATE_DIR',
    doc: 'LMDB store, audio spool, generated API key',
    shown: './var',
    default: () => path.resolve('var'),
    parse: (v) => path.resolve(text(v)),
  },
  {
    key: 'modelsDir',
    env: 'EARSHOT_MODELS_DIR',
    doc: 'where model names are looked up',
    shown: './models',
    default: () => path.resolve('models'),
    parse: (v) => path.resolve(text(v)),
  },
  {
    key: 'model',
    env: 'EARSHOT_MODEL',
    doc: 'model name (`ggml-<name>.bin` in the models directory) or path',
    default: () => 'tiny.en-q5_1',
    parse: text,
  },
  {
    key: 'threads',
    env: 'EARSHOT_THREADS',
    doc: 'inference threads',
    shown: 'all cores',
    default: () => Math.max(1, os.availableParallelism()),
    parse: integer(1, 64),
  },
  {
    key: 'apiKey',
    env: 'EARSHOT_API_KEY',
    doc: 'API key (at least 16 printable ASCII characters); unset: generated into `<state>/api-key`',
    shown: 'generated',
    default: () => undefined,
    parse: apiKey,
    secret: true,
  },
  { key: 'auth', env: 'EARSHOT_AUTH', doc: '`key`, or `none` for a trusted bench', default: () => 'key' as const, parse: oneOf(['key', 'none'] as const) },
  {
    key: 'allowedHosts',
    env: 'EARSHOT_ALLOWED_HOSTS',
    doc: "with `EARSHOT_AUTH=none`: more names or addresses clients may reach the service by, besides its hostname, hostname.local, localhost and the interfaces' addresses; any other Host header gets 421 (a defence against DNS rebinding)",
    shown: 'none',
    default: () => [],
    parse: hostList,
  },
  {
    key: 'callbackCidrs',
    env: 'EARSHOT_CALLBACK_CIDRS',
    doc: 'allowed callback and webhook targets (checked at connect time)',
    default: () => defaultCallbackCidrs,
    parse: cidrList,
  },
  {
    key: 'wyomingPort',
    env: 'EARSHOT_WYOMING_PORT',
    doc: 'TCP port of the Wyoming server for Home Assistant (on `EARSHOT_HOST`), or `off`',
    default: () => 10300,
    parse: portOrOff,
  },
  {
    key: 'wyomingCidrs',
    env: 'EARSHOT_WYOMING_CIDRS',
    doc: 'peers the Wyoming server answers (it has no authentication); others are disconnected',
    default: () => defaultWyomingCidrs,
    parse: cidrList,
  },
  {
    key: 'maxHooks',
    env: 'EARSHOT_MAX_HOOKS',
    doc: 'at most this many IBM callback URLs, and as many Azure web hooks, are stored',
    default: () => 100,
    parse: integer(1, 100_000),
  },
  {
    key: 'hookFailureHours',
    env: 'EARSHOT_HOOK_FAILURE_HOURS',
    doc: 'an Azure web hook turns `Failed` once every delivery to it has failed for this many hours (a dead letter alone does not disable it)',
    default: () => 72,
    parse: integer(1, 24 * 365),
  },
  {
    key: 'metricsAuth',
    env: 'EARSHOT_METRICS_AUTH',
    doc: '`none` (Prometheus scrapes without credentials), or `key`: /metrics needs the API key like the APIs',
    default: () => 'none' as const,
    parse: oneOf(['none', 'key'] as const),
  },
  { key: 'logLevel', env: 'EARSHOT_LOG_LEVEL', doc: '`debug`, `info`, `warn` or `error`', default: () => 'info' as const, parse: oneOf(logLevels) },
  {
    key: 'inferenceNice',
    env: 'EARSHOT_INFERENCE_NICE',
    doc: 'how much lower the inference threads run than the HTTP side',
    default: () => 10,
    parse: integer(0, 19),
  },
  { key: 'flashAttn', env: 'EARSHOT_FLASH_ATTN', doc: 'whisper.cpp flash attention', default: () => true, parse: boolean },
  {
    key: 'windowSeconds',
    env: 'EARSHOT_WINDOW_SECONDS',
    doc: 'audio is transcribed in windows of this length (bounds memory)',
    default: () => 300,
    parse: integer(30, 3600),
  },
  {
    key: 'maxQueued',
    env: 'EARSHOT_MAX_QUEUED',
    doc: 'waiting jobs before 503 (answered before the upload is read)',
    default: () => 100,
    parse: integer(1, 100000),
  },
  {
    key: 'maxAudioSeconds',
    env: 'EARSHOT_MAX_AUDIO_SECONDS',
    doc: 'longer audio fails its job',
    default: () => 4 * 3600,
    parse: integer(1, 48 * 3600),
  },
  {
    key: 'ibmSignature',
    env: 'EARSHOT_IBM_SIGNATURE',
    doc: "`sha1` (IBM's contract) or `sha256`",
    default: () => 'sha1' as const,
    parse: oneOf(['sha1', 'sha256'] as const),
  },
  {
    key: 'vadModel',
    env: 'EARSHOT_VAD_MODEL',
    doc: 'Silero VAD model (name or path): skip non-speech',
    shown: 'off',
    default: () => undefined,
    parse: text,
  },
  {
    key: 'maxUploadBytes',
    env: 'EARSHOT_MAX_UPLOAD_BYTES',
    doc: 'largest upload',
    shown: '1 GiB',
    default: () => 1024 ** 3,
    parse: integer(100, 1024 ** 3),
  },
  {
    key: 'minFreeBytes',
    env: 'EARSHOT_MIN_FREE_BYTES',
    doc: "kept free on the state directory's file system: uploads that would use it get 507, and jobs wait (never fail) below it",
    shown: '256 MiB',
    default: () => 256 * 1024 ** 2,
    parse: integer(0, Number.MAX_SAFE_INTEGER),
  },
  {
    key: 'retryDelaysMs',
    env: 'EARSHOT_RETRY_SCHEDULE',
    doc: 'waits between delivery attempts',
    shown: '5s,5m,30m,2h,5h,10h,24h',
    default: () => [...defaultRetryDelaysMs],
    parse: durationList,
  },
  {
    key: 'deliveryTimeoutMs',
    env: 'EARSHOT_DELIVERY_TIMEOUT_MS',
    doc: 'per delivery attempt',
    default: () => 15_000,
    parse: integer(100, 120_000),
  },
  {
    key: 'stallSeconds',
    env: 'EARSHOT_STALL_SECONDS',
    doc: 'longest time the running job may go without progress (the decoder writing audio, whisper finishing a 30 s chunk) before the systemd watchdog lapses; independent of the length of the audio',
    default: () => 600,
    parse: integer(10, 86400),
  },
  {
    key: 'temperatureFallback',
    env: 'EARSHOT_TEMPERATURE_FALLBACK',
    doc: "whisper's re-decoding at higher temperatures",
    default: () => true,
    parse: boolean,
  },
  {
    key: 'trimEncoder',
    env: 'EARSHOT_TRIM_ENCODER',
    doc: "audio shorter than 30 s: whisper's encoder runs over the clip plus 2 s, not a padded 30 s (faster voice commands; see Short audio)",
    default: () => false,
    parse: boolean,
  },
  {
    key: 'decoderSandbox',
    env: 'EARSHOT_DECODER_SANDBOX',
    doc: '`required` (the audio decoder refuses to run without its seccomp filter), or `optional` to decode unsandboxed where the kernel has no seccomp (qemu-user)',
    default: () => 'required' as const,
    parse: oneOf(['required', 'optional'] as const),
  },
  {
    key: 'fleetUrl',
    env: 'EARSHOT_FLEET_URL',
    doc: "the fleet's NATS JetStream broker (`nats://host:4222`, `tls://…`; several comma-separated for a cluster): this device connects, provisions the fleet's stream and buckets and reports the link (`/readyz`, `earshot_fleet_connected`); batch transcriptions (IBM `POST /v1/recognitions`, Azure's `contentUrls`) go to the fleet's queue and any device runs them, and those taken while the broker was away go there once it is back; what a client waits on stays on the device (docs/fleet.md)",
    shown: 'off',
    default: () => undefined,
    parse: natsUrls,
  },
  {
    key: 'fleetAckWaitSeconds',
    env: 'EARSHOT_FLEET_ACK_WAIT_SECONDS',
    doc: "a fleet job whose device stops sending signs of life (it died) goes to another device after this long; every device of a fleet should have the same (the last one to connect sets the broker's)",
    default: () => 60,
    parse: integer(2, 3600),
  },
  {
    key: 'fleetCreds',
    env: 'EARSHOT_FLEET_CREDS',
    doc: 'a NATS credentials file (user JWT and NKey seed, as `nsc` writes it) for the broker',
    shown: 'none',
    default: () => undefined,
    parse: existingFile,
  },
  {
    key: 'fleetToken',
    env: 'EARSHOT_FLEET_TOKEN',
    doc: "a token for the broker's `authorization { token }`",
    shown: 'none',
    default: () => undefined,
    parse: text,
    secret: true,
  },
  {
    key: 'fleetTlsCa',
    env: 'EARSHOT_FLEET_TLS_CA',
    doc: "TLS to the broker: the CA file of the broker's certificate",
    shown: 'system CAs',
    default: () => undefined,
    parse: existingFile,
  },
  {
    key: 'fleetTlsCert',
    env: 'EARSHOT_FLEET_TLS_CERT',
    doc: "mutual TLS: this device's certificate file (with `EARSHOT_FLEET_TLS_KEY`)",
    shown: 'none',
    default: () => undefined,
    parse: existingFile,
  },
  {
    key: 'fleetTlsKey',
    env: 'EARSHOT_FLEET_TLS_KEY',
    doc: "mutual TLS: this device's private key file",
    shown: 'none',
    default: () => undefined,
    parse: existingFile,
  },
] satisfies Setting<keyof Config>[];

/** One row of the README's settings table. */
export interface SettingDoc {
  env: string;
  key: string;
  default: string;
  doc: string;
}

/** The settings as the README documents them (scripts/docs.ts writes the table). */
export function settingDocs(): SettingDoc[] {
  return (settings as Setting<keyof Config>[]).map((s) => {
    const value = s.default({});
    const shown = s.shown ?? (Array.isArray(value) ? value.join(',') : String(value));
    return { env: s.env, key: s.key, default: shown, doc: s.doc };
  });
}

export interface ConfigSources {
  env?: NodeJS.ProcessEnv;
  /** Overrides EARSHOT_CONFIG and the default file location; null: no file at all. */
  file?: string | null;
}

/**
 * Defaults, then the JSON file named by EARSHOT_CONFIG (or /etc/earshot/config.json when
 * present), then EARSHOT_* environment variables; validated once. Every problem is one
 * line of the thrown ERR_CONFIG error.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const problems: string[] = [];
  const explicitFile = sources.file === null ? null : (sources.file ?? env.EARSHOT_CONFIG);
  const file = explicitFile === null ? undefined : (explicitFile ?? (existsSync('/etc/earshot/config.json') ? '/etc/earshot/config.json' : undefined));

  let fromFile: Record<string, unknown> = {};
  if (file) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        problems.push(`${file}: must contain a JSON object`);
      } else {
        fromFile = parsed as Record<string, unknown>;
      }
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message}`);
    }
  }
  const known = new Set<string>(settings.map((s) => s.key));
  for (const key of Object.keys(fromFile)) {
    if (!known.has(key)) problems.push(`${file}: unknown setting "${key}" (known: ${[...known].join(', ')})`);
  }

  const config: Partial<Config> = {};
  for (const setting of settings as Setting<keyof Config>[]) {
    const envValue = env[setting.env];
    const [raw, where] =
      envValue !== undefined && envValue !== ''
        ? [envValue, setting.env]
        : fromFile[setting.key] !== undefined
          ? [fromFile[setting.key] as Raw, `${file}: ${setting.key}`]
          : [undefined, ''];
    try {
      (config as Record<string, unknown>)[setting.key] = raw === undefined ? setting.default(config) : setting.parse(raw);
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
      problems.push(`${where} ${err.message} (${setting.secret ? 'value not shown' : `got ${JSON.stringify(raw)}`})`);
    }
  }
  if (!config.fleetTlsCert !== !config.fleetTlsKey) problems.push('EARSHOT_FLEET_TLS_CERT and EARSHOT_FLEET_TLS_KEY go together (mutual TLS needs both)');
  if (problems.length) throw new AppError('ERR_CONFIG', `Invalid configuration:\n- ${problems.join('\n- ')}`);
  const complete = config as Config;
  complete.modelPath = resolveModelPath(complete.model, complete.modelsDir);
  complete.vadModelPath = complete.vadModel ? resolveModelPath(complete.vadModel, complete.modelsDir) : undefined;
  return complete;
}
