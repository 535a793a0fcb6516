// What the device's page shows of the device: readings from /proc, /sys and vcgencmd
// where the board has them, nothing made up where it does not.
import t from 'tap';

import { decodeThrottled, deviceInfo, type DeviceSources } from '../../src/ops/device.js';

const state = {
  modelFile: '/var/lib/earshot/models/ggml-tiny.en-q5_1.bin',
  model: { multilingual: false, languages: ['en', 'de'], type: 'tiny', weightType: 'q5_1' },
  disk: { free: () => 5e9, floorBytes: 268435456 },
  jobs: () => ({ waiting: 2, processing: 1, completed: 7, failed: 0 }),
  auth: 'key' as const,
};

t.test('vcgencmd get_throttled: what happens now and what happened since boot', async (t) => {
  t.same(decodeThrottled('throttled=0x0\n'), { raw: '0x0', now: [], sinceBoot: [] });
  t.same(decodeThrottled('throttled=0x50005\n'), { raw: '0x50005', now: ['under-voltage', 'throttled'], sinceBoot: ['under-voltage', 'throttled'] });
  t.same(decodeThrottled('throttled=0xa0000'), { raw: '0xa0000', now: [], sinceBoot: ['ARM frequency capped', 'soft temperature limit'] });
  t.equal(decodeThrottled('error=1'), undefined);
});

t.test('a Raspberry Pi: board from the device tree, temperature, throttling', async (t) => {
  const files: Record<string, string> = {
    '/proc/device-tree/model': 'Raspberry Pi 5 Model B Rev 1.0\0',
    '/sys/class/thermal/thermal_zone0/temp': '51250\n',
  };
  const pi: DeviceSources = { readFile: (f) => files[f], throttled: async () => 'throttled=0x20002\n' };
  const info = await deviceInfo(state, pi);
  t.match(info, {
    model: 'ggml-tiny.en-q5_1.bin',
    modelLoaded: true,
    multilingual: false,
    modelType: 'tiny',
    weightType: 'q5_1',
    board: 'Raspberry Pi 5 Model B Rev 1.0',
    cpuTemperature: 51.3,
    throttling: { now: ['ARM frequency capped'], sinceBoot: ['ARM frequency capped'] },
    disk: { freeBytes: 5e9, floorBytes: 268435456 },
    jobs: { waiting: 2, processing: 1, completed: 7 },
    auth: 'key',
  });
  t.match(info.version, /^\d+\.\d+\.\d+/);
  t.ok(info.uptime.system > 0 && info.uptime.service >= 0);
});

t.test('a fleet device reports its broker link; a single device has no fleet', async (t) => {
  const bare: DeviceSources = { readFile: () => undefined, throttled: async () => undefined };
  t.notOk('fleet' in (await deviceInfo(state, bare)), 'no EARSHOT_FLEET_URL: nothing of a fleet');
  t.equal((await deviceInfo({ ...state, fleet: 'unreachable' }, bare)).fleet, 'unreachable');
});

t.test('a machine without device tree, thermal zone or vcgencmd; the model still loading', async (t) => {
  const bare: DeviceSources = { readFile: () => undefined, throttled: async () => undefined };
  const info = await deviceInfo({ ...state, model: undefined, auth: 'none' }, bare);
  t.equal(info.modelLoaded, false);
  t.notOk('languages' in info);
  t.notOk('cpuTemperature' in info);
  t.notOk('throttling' in info);
  t.ok(info.board.length > 0, `the CPU's name instead: ${info.board}`);
  t.equal(info.auth, 'none');
});
