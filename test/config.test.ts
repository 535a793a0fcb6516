// Settings: defaults, then the JSON file, then the environment; validated once, one line
// per problem.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { defaultCallbackCidrs, loadConfig, settingDocs } from '../src/config.js';

function configFile(t: { testdir(): string }, content: unknown): string {
  const file = path.join(t.testdir(), 'config.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

t.test('defaults, with no file and no environment', async (t) => {
  const config = loadConfig({ env: {}, file: null });
  t.match(config, {
    host: '0.0.0.0',
    port: 8080,
    stateDir: path.resolve('var'),
    model: 'tiny.en-q5_1',
    modelPath: path.join(path.resolve('models'), 'ggml-tiny.en-q5_1.bin'),
    threads: Math.max(1, os.availableParallelism()),
    apiKey: undefined,
    auth: 'key',
    callbackCidrs: defaultCallbackCidrs,
    retryDelaysMs: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 86_400_000],
    vadModelPath: undefined,
  });
});

t.test('the environment wins over the file, the file over the defaults', async (t) => {
  const file = configFile(t, { port: 9000, host: '127.0.0.1', threads: 3, model: '/opt/m/ggml-base.bin' });
  const config = loadConfig({ env: { EARSHOT_PORT: '9100', EARSHOT_CONFIG: '/ignored/when/file/is/given' }, file });
  t.equal(config.port, 9100, 'env over file');
  t.equal(config.host, '127.0.0.1', 'file over default');
  t.equal(config.threads, 3);
  t.equal(config.modelPath, '/opt/m/ggml-base.bin', 'a path stays a path');
  t.equal(loadConfig({ env: { EARSHOT_CONFIG: file }, file: undefined }).port, 9000, 'EARSHOT_CONFIG names the file');
  t.equal(loadConfig({ env: { EARSHOT_PORT: '' }, file }).port, 9000, 'an empty variable counts as unset');
});

t.test('every problem is one line of one ERR_CONFIG error, unknown keys included', async (t) => {
  const file = configFile(t, { port: 'eighty', colour: 'blue', flashAttn: 'maybe' });
  const err = (() => {
    try {
      loadConfig({ env: { EARSHOT_THREADS: '0', EARSHOT_AUTH: 'token' }, file });
    } catch (e) {
      return e as Error & { code: string };
    }
    throw new Error('loadConfig accepted an invalid configuration');
  })();
  t.equal(err.code, 'ERR_CONFIG');
  const lines = err.message.split('\n');
  t.equal(lines[0], 'Invalid configuration:');
  t.same(lines.slice(1).sort(), [
    `- ${file}: flashAttn must be true or false (got "maybe")`,
    `- ${file}: port must be an integer from 0 to 65535 (got "eighty")`,
    `- ${file}: unknown setting "colour" (known: ${settingDocs()
      .map((s) => s.key)
      .join(', ')})`,
    '- EARSHOT_AUTH must be one of key, none (got "token")',
    '- EARSHOT_THREADS must be an integer from 1 to 64 (got "0")',
  ]);
  t.throws(() => loadConfig({ env: {}, file: configFile(t, '{"port": 80,') }), { code: 'ERR_CONFIG', message: /config\.json: .*JSON/ });
  t.throws(() => loadConfig({ env: {}, file: configFile(t, [1, 2]) }), { code: 'ERR_CONFIG', message: /must contain a JSON object/ });
});

t.test('durations: ms, s, m and h, as a list in the environment or an array in the file', async (t) => {
  t.same(loadConfig({ env: { EARSHOT_RETRY_SCHEDULE: '500ms, 5s,1.5m,2h' }, file: null }).retryDelaysMs, [500, 5000, 90_000, 7_200_000]);
  t.same(loadConfig({ env: {}, file: configFile(t, { retryDelaysMs: ['10s', '1m'] }) }).retryDelaysMs, [10_000, 60_000]);
  t.same(loadConfig({ env: { EARSHOT_RETRY_SCHEDULE: ',' }, file: null }).retryDelaysMs, [], 'no retries at all');
  t.throws(() => loadConfig({ env: { EARSHOT_RETRY_SCHEDULE: '5 minutes' }, file: null }), {
    message: /"5 minutes" is not a duration such as 500ms, 5s, 5m or 2h/,
  });
  t.throws(() => loadConfig({ env: { EARSHOT_RETRY_SCHEDULE: '-5s' }, file: null }), { code: 'ERR_CONFIG' });
});

t.test('CIDR lists: IPv4 and IPv6 ranges, each checked', async (t) => {
  t.same(loadConfig({ env: { EARSHOT_CALLBACK_CIDRS: '127.0.0.0/8, ::1/128,192.168.1.0/24' }, file: null }).callbackCidrs, [
    '127.0.0.0/8',
    '::1/128',
    '192.168.1.0/24',
  ]);
  t.same(loadConfig({ env: {}, file: configFile(t, { callbackCidrs: ['10.1.0.0/16'] }) }).callbackCidrs, ['10.1.0.0/16']);
  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'lan', '::1/129']) {
    t.throws(() => loadConfig({ env: { EARSHOT_CALLBACK_CIDRS: bad }, file: null }), { code: 'ERR_CONFIG', message: /EARSHOT_CALLBACK_CIDRS/ }, bad);
  }
});

t.test('booleans, choices and models by name', async (t) => {
  const config = loadConfig({
    env: { EARSHOT_FLASH_ATTN: 'off', EARSHOT_TEMPERATURE_FALLBACK: 'YES', EARSHOT_VAD_MODEL: 'silero-v5.1.2', EARSHOT_MODELS_DIR: '/srv/models' },
    file: null,
  });
  t.equal(config.flashAttn, false);
  t.equal(config.temperatureFallback, true);
  t.equal(config.trimEncoder, false, 'encoder trimming is off unless asked for');
  t.equal(loadConfig({ env: { EARSHOT_TRIM_ENCODER: 'on' }, file: null }).trimEncoder, true);
  t.equal(loadConfig({ env: {}, file: configFile(t, { trimEncoder: true }) }).trimEncoder, true);
  t.throws(() => loadConfig({ env: { EARSHOT_TRIM_ENCODER: 'maybe' }, file: null }), { code: 'ERR_CONFIG', message: /EARSHOT_TRIM_ENCODER/ });
  t.equal(config.vadModelPath, '/srv/models/ggml-silero-v5.1.2.bin');
  t.equal(loadConfig({ env: {}, file: configFile(t, { flashAttn: false }) }).flashAttn, false, 'JSON booleans');
});

t.test('the API key: at least 16 printable ASCII characters, and a refused key is never echoed', async (t) => {
  t.equal(loadConfig({ env: { EARSHOT_API_KEY: ' key-0123456789abcdef ' }, file: null }).apiKey, 'key-0123456789abcdef');
  t.equal(loadConfig({ env: { EARSHOT_API_KEY: '' }, file: null }).apiKey, undefined, 'empty: generated');
  for (const [env, file, problem] of [
    ['hunter2', undefined, 'EARSHOT_API_KEY is 7 characters long, shorter than the 16 required (value not shown)'],
    ['secret key with spaces', undefined, 'EARSHOT_API_KEY contains spaces or characters outside printable ASCII (value not shown)'],
    [undefined, { apiKey: '' }, 'apiKey must be a non-empty string (value not shown)'],
    [undefined, { apiKey: 'hunter2' }, 'apiKey is 7 characters long, shorter than the 16 required (value not shown)'],
  ] as const) {
    const err = (() => {
      try {
        loadConfig({ env: env ? { EARSHOT_API_KEY: env } : {}, file: file ? configFile(t, file) : null });
      } catch (e) {
        return e as Error;
      }
      throw new Error('accepted');
    })();
    t.match(err.message, problem);
    t.notMatch(err.message, /hunter2|secret key/);
  }
});

t.test('allowed hosts: names and addresses, canonical; anything else refused', async (t) => {
  t.same(loadConfig({ env: { EARSHOT_ALLOWED_HOSTS: 'Speech.Example.Lan., 192.0.2.7, 2001:DB8::1,[::2]' }, file: null }).allowedHosts, [
    'speech.example.lan',
    '192.0.2.7',
    '2001:db8::1',
    '::2',
  ]);
  t.same(loadConfig({ env: {}, file: configFile(t, { allowedHosts: ['pi.lan'] }) }).allowedHosts, ['pi.lan']);
  t.same(loadConfig({ env: {}, file: null }).allowedHosts, []);
  t.throws(() => loadConfig({ env: { EARSHOT_ALLOWED_HOSTS: 'pi.lan, http://evil/' }, file: null }), {
    message: /EARSHOT_ALLOWED_HOSTS "http:\/\/evil\/" is not a host name or address/,
  });
  t.throws(() => loadConfig({ env: {}, file: configFile(t, { allowedHosts: 7 }) }), { message: /must be a comma-separated list of host names/ });
});

t.test('the fleet: off by default; nats:// and tls:// URLs, comma-separated; files that exist; a TLS certificate with its key', async (t) => {
  const defaults = loadConfig({ env: {}, file: null });
  t.equal(defaults.fleetUrl, undefined);
  t.equal(defaults.fleetCreds, undefined);
  t.equal(loadConfig({ env: { EARSHOT_FLEET_URL: ' nats://a.lan:4222 , tls://b.lan:4222' }, file: null }).fleetUrl, 'nats://a.lan:4222,tls://b.lan:4222');
  for (const bad of ['http://a.lan:4222', 'a.lan:4222', 'nats://a.lan:4222,ws://b']) {
    t.throws(() => loadConfig({ env: { EARSHOT_FLEET_URL: bad }, file: null }), { code: 'ERR_CONFIG', message: /EARSHOT_FLEET_URL/ }, bad);
  }
  const dir = t.testdir({ 'device.creds': 'creds', 'ca.pem': 'ca', 'cert.pem': 'cert', 'key.pem': 'key' });
  const files = loadConfig({
    env: {
      EARSHOT_FLEET_URL: 'tls://a.lan',
      EARSHOT_FLEET_CREDS: path.join(dir, 'device.creds'),
      EARSHOT_FLEET_TLS_CA: path.join(dir, 'ca.pem'),
      EARSHOT_FLEET_TLS_CERT: path.join(dir, 'cert.pem'),
      EARSHOT_FLEET_TLS_KEY: path.join(dir, 'key.pem'),
    },
    file: null,
  });
  t.equal(files.fleetCreds, path.join(dir, 'device.creds'));
  t.equal(files.fleetTlsKey, path.join(dir, 'key.pem'));
  t.throws(() => loadConfig({ env: { EARSHOT_FLEET_CREDS: path.join(dir, 'missing.creds') }, file: null }), {
    message: /EARSHOT_FLEET_CREDS .*does not exist/,
  });
  t.throws(() => loadConfig({ env: { EARSHOT_FLEET_TLS_CERT: path.join(dir, 'cert.pem') }, file: null }), { message: /go together/ });
  const err = (() => {
    try {
      loadConfig({ env: { EARSHOT_FLEET_TOKEN: ' ' }, file: null });
    } catch (e) {
      return e as Error;
    }
    throw new Error('accepted');
  })();
  t.match(err.message, /EARSHOT_FLEET_TOKEN must be a non-empty string \(value not shown\)/);
});
