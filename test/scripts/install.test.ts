// scripts/install against a fake root: the real script runs, every system command it
// calls (apt-get, dpkg, systemctl, npm, the native build, download-model, hostname, id,
// sudo, node's version) is a stand-in that records its arguments and creates what the
// real one would.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';

import { loadConfig } from '../../src/config.js';
import { projectRoot } from '../../src/paths.js';
import { NatsServer } from '../helpers/nats-server.js';

const installScript = path.join(projectRoot, 'scripts/install');
const repoUnit = readFileSync(path.join(projectRoot, 'systemd/earshot.service'), 'utf8');

const prologue = `#!/usr/bin/env bash
set -euo pipefail
shims="$(cd "$(dirname "$0")" && pwd)"
export PATH="\${PATH//$shims:/}"
record() { local IFS=' '; printf '%s\\n' "$*" >>"$FAKE_LOG"; }
`;

// name → body (after the prologue)
const shimBodies: Record<string, string> = {
  'apt-get': 'record apt-get "$@"',
  // Nothing is installed: install-deps asks apt for all of its packages.
  'dpkg-query': 'exit 1',
  cmake: 'echo "cmake version 3.25.1"',
  systemctl: 'record systemctl "$@"',
  npm: `record npm "$@" "(in $PWD)"
case "$1" in
  install) mkdir -p node_modules/nodejs-whisper; touch node_modules/.package-lock.json ;;
  run) mkdir -p dist/src dist/scripts; echo '// built' >dist/src/main.js; echo '// built' >dist/scripts/download-model.js ;;
esac`,
  'build-native': `record "EARSHOT_PRESET=$EARSHOT_PRESET EARSHOT_TOOLS=$EARSHOT_TOOLS build-native" "$@" "(in $PWD)"
mkdir -p native/build/Release native/build/bin
touch native/build/Release/earshot.node native/build/bin/earshot-decode`,
  'download-model': `record download-model "$@"
name="$1"; shift
dir=models
while [ $# -gt 0 ]; do case "$1" in --dir) dir="$2"; shift 2 ;; *) shift ;; esac; done
[ -z "\${FAKE_DOWNLOAD_FAIL:-}" ] || { echo "download-model: 404" >&2; exit 1; }
mkdir -p "$dir"; echo "model $name" >"$dir/ggml-$name.bin"`,
  hostname: `if [ "\${1:-}" = -I ]; then echo "192.168.1.42 fd00::42 "; else echo earshot-pi; fi`,
  id: `if [ "\${1:-}" = -u ]; then echo "\${FAKE_UID:-0}"; else exec id "$@"; fi`,
  sudo: `record sudo "$@"
FAKE_UID=0 exec "$@"`,
  dpkg: `if [ "\${1:-}" = --print-architecture ]; then echo "$FAKE_ARCH"; else exec dpkg "$@"; fi`,
  // The real node, except that it reports FAKE_NODE_VERSION as its version.
  node: `if [ -n "\${FAKE_NODE_VERSION:-}" ]; then
  case "\${1:-}" in
    -v | --version) echo "v$FAKE_NODE_VERSION"; exit 0 ;;
    -p) expr="\${2//process.versions.node/\\"$FAKE_NODE_VERSION\\"}"; shift 2; exec node -p "$expr" "$@" ;;
  esac
fi
exec node "$@"`,
};

interface Fake {
  root: string;
  shims: string;
  log: string;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The recorded commands, with the fake root shown as $ROOT and the stand-ins' directory as $SHIMS. */
  calls: string[];
}

const piOsRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`;

const trixieOsRelease = `PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
ID=debian
`;

function makeFake(t: Test, board: string | null, osRelease = piOsRelease): Fake {
  // Not t.testdir(): its name has spaces, and the script takes plain paths only.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fake = { root: path.join(dir, 'root'), shims: path.join(dir, 'shims'), log: path.join(dir, 'calls.log') };
  mkdirSync(path.join(fake.root, 'etc'), { recursive: true });
  mkdirSync(fake.shims);
  writeFileSync(path.join(fake.root, 'etc/os-release'), osRelease);
  if (board !== null) {
    mkdirSync(path.join(fake.root, 'proc/device-tree'), { recursive: true });
    writeFileSync(path.join(fake.root, 'proc/device-tree/model'), `${board}\0`);
  }
  for (const [name, body] of Object.entries(shimBodies)) {
    writeFileSync(path.join(fake.shims, name), `${prologue + body}\n`, { mode: 0o755 });
  }
  return fake;
}

/** Runs the script with `--root` at the fake root, unless `options.root` is false. */
function run(fake: Fake, args: string[], env: Record<string, string> = {}, options: { script?: string; root?: boolean } = {}): Run {
  writeFileSync(fake.log, '');
  const { script = installScript, root = true } = options;
  const result = spawnSync(script, root ? ['--root', fake.root, ...args] : args, {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      EARSHOT_INSTALL_SHIMS: fake.shims,
      FAKE_LOG: fake.log,
      FAKE_ARCH: 'arm64',
      ...env,
    },
  });
  const calls = readFileSync(fake.log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.replaceAll(fake.root, '$ROOT').replaceAll(fake.shims, '$SHIMS'));
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, calls };
}

const aptCalls = [
  /^apt-get update -qq$/,
  /^apt-get install -y -qq --no-install-recommends .*\bcmake\b.*\blibsndfile1-dev\b.*\blibsoxr-dev\b.*\blibseccomp-dev\b/,
];

/** Each call matches its pattern, in order, and there are no others. */
function assertCalls(t: Test, calls: string[], expected: (string | RegExp)[]): void {
  t.equal(calls.length, expected.length, `${expected.length} commands:\n${calls.join('\n')}`);
  expected.forEach((want, i) => {
    if (typeof want === 'string') t.equal(calls[i], want, `command ${i + 1}`);
    else t.match(calls[i] ?? '', want, `command ${i + 1}`);
  });
}

const mode = (file: string): number => statSync(file).mode & 0o777;
const readConfig = (fake: Fake): Record<string, unknown> => JSON.parse(readFileSync(path.join(fake.root, 'etc/earshot/config.json'), 'utf8'));

t.test('Pi 5: first install, then a second run upgrades in place', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  const first = run(fake, []);
  t.equal(first.code, 0, first.stderr);

  assertCalls(t, first.calls, [
    ...aptCalls,
    'npm install --include=dev --no-audit --no-fund (in $ROOT/opt/earshot)',
    'EARSHOT_PRESET=pi5 EARSHOT_TOOLS=OFF build-native (in $ROOT/opt/earshot)',
    'npm run --silent build:ts (in $ROOT/opt/earshot)',
    'download-model tiny.en-q5_1 --dir $ROOT/var/lib/earshot/models',
    'systemctl daemon-reload',
    'systemctl enable --now earshot.service',
  ]);

  // The checkout, without what is built or downloaded.
  const app = path.join(fake.root, 'opt/earshot');
  for (const file of ['package.json', 'package-lock.json', 'src/main.ts', 'scripts/install', 'scripts/build-native', 'systemd/earshot.service']) {
    t.ok(existsSync(path.join(app, file)), `${file} copied`);
  }
  t.ok(statSync(path.join(app, 'scripts/install')).mode & 0o100, 'scripts stay executable');
  t.notOk(existsSync(path.join(app, 'node_modules/typescript')), "the checkout's node_modules is not copied");
  t.notOk(existsSync(path.join(app, 'dist/test')), "the checkout's dist is not copied");
  t.notOk(existsSync(path.join(app, 'models')), "the checkout's models are not copied");
  t.ok(existsSync(path.join(app, 'native/build/Release/earshot.node')), 'built');
  t.ok(existsSync(path.join(fake.root, 'var/lib/earshot/models/ggml-tiny.en-q5_1.bin')), 'model downloaded');

  // The unit: the repository's, with this node and prefix.
  const unit = readFileSync(path.join(fake.root, 'etc/systemd/system/earshot.service'), 'utf8');
  t.match(unit, new RegExp(`^ExecStart=${fake.shims}/node /opt/earshot/dist/src/main\\.js$`, 'm'));
  t.match(unit, /^WorkingDirectory=\/opt\/earshot$/m);
  t.match(unit, /^Environment=EARSHOT_MODELS_DIR=\/var\/lib\/earshot\/models$/m);
  const others = (text: string) => text.split('\n').filter((l) => !/^(ExecStart|WorkingDirectory)=/.test(l));
  t.same(others(unit), others(repoUnit), 'otherwise the repository unit');

  // The command line on the PATH: a wrapper running it with the service's Node.
  const cli = readFileSync(path.join(fake.root, 'usr/local/bin/earshot'), 'utf8');
  t.match(cli, new RegExp(`^exec ${fake.shims}/node /opt/earshot/dist/src/cli/main\\.js "\\$@"$`, 'm'), 'earshot runs the installed command line');
  // The dynamic user cannot read /etc/earshot: the unit hands the file over as a credential.
  t.match(unit, /^LoadCredential=config\.json:\/etc\/earshot\/config\.json$/m);
  t.match(unit, /^Environment=EARSHOT_CONFIG=%d\/config\.json$/m);
  const verify = spawnSync('systemd-analyze', ['verify', path.join(fake.root, 'etc/systemd/system/earshot.service')], { encoding: 'utf8' });
  t.equal(verify.status, 0);
  t.equal(verify.stderr + verify.stdout, '', 'systemd-analyze verify: unit and drop-in are clean');

  // The settings: a generated key, readable by root only.
  const configFile = path.join(fake.root, 'etc/earshot/config.json');
  const config = readConfig(fake);
  t.equal(config.model, 'tiny.en-q5_1');
  t.match(config.apiKey, /^[A-Za-z0-9_-]{32}$/);
  t.equal(mode(configFile), 0o640, 'config.json is 0640');
  t.equal(mode(path.dirname(configFile)), 0o750, '/etc/earshot is 0750');
  const key = config.apiKey as string;

  // Zeroconf: Home Assistant discovers _wyoming._tcp; _http._tcp names the API.
  const avahiFile = path.join(fake.root, 'etc/avahi/services/earshot.service');
  const avahi = readFileSync(avahiFile, 'utf8');
  t.match(avahi, /^<\?xml version="1\.0" standalone="no"\?>\n<!DOCTYPE service-group SYSTEM "avahi-service\.dtd">\n/);
  t.match(avahi, '<name replace-wildcards="yes">earshot on %h</name>');
  t.match(avahi, /<service>\n {4}<type>_wyoming\._tcp<\/type>\n {4}<port>10300<\/port>\n {2}<\/service>/);
  t.match(avahi, /<service>\n {4}<type>_http\._tcp<\/type>\n {4}<port>8080<\/port>/);
  t.equal(mode(avahiFile), 0o644, 'avahi-daemon (its own user) reads it');
  const xmllint = spawnSync('xmllint', ['--noout', avahiFile], { encoding: 'utf8' });
  if (!xmllint.error) t.equal(xmllint.status, 0, `well-formed XML: ${xmllint.stderr}`);
  t.match(first.stdout, /Wyoming: +192\.168\.1\.42:10300 /);

  t.match(first.stdout, 'earshot is installed and running');
  t.match(first.stdout, /URL: +http:\/\/192\.168\.1\.42:8080\n/);
  t.match(first.stdout, `API key:  ${key}\n`);
  t.match(first.stdout, `curl -u apikey:${key} -X POST -H 'Content-Type: audio/wav' --data-binary @file.wav http://192.168.1.42:8080/v1/recognitions\n`);

  // Second run: a file the checkout no longer has goes, a setting the user made stays.
  writeFileSync(path.join(app, 'src/removed-module.ts'), 'old');
  writeFileSync(path.join(app, '.earshot-files'), `${readFileSync(path.join(app, '.earshot-files'), 'utf8')}src/removed-module.ts\0`);
  writeFileSync(configFile, JSON.stringify({ ...config, port: 9090 }, null, 2));
  chmodSync(configFile, 0o640);
  const second = run(fake, []);
  t.equal(second.code, 0, second.stderr);
  assertCalls(t, second.calls, [
    ...aptCalls,
    'EARSHOT_PRESET=pi5 EARSHOT_TOOLS=OFF build-native (in $ROOT/opt/earshot)',
    'npm run --silent build:ts (in $ROOT/opt/earshot)',
    'download-model tiny.en-q5_1 --dir $ROOT/var/lib/earshot/models',
    'systemctl daemon-reload',
    'systemctl restart earshot.service',
  ]);
  t.match(second.stdout, 'npm dependencies unchanged');
  t.notOk(existsSync(path.join(app, 'src/removed-module.ts')), 'a file gone from the checkout is removed');
  t.same(readConfig(fake), { ...config, port: 9090 }, 'config kept, key unchanged');
  t.equal(mode(configFile), 0o640);
  t.match(second.stdout, 'earshot is upgraded and running');
  t.match(second.stdout, `API key:  ${key}\n`);
  t.match(second.stdout, 'http://192.168.1.42:9090/v1/recognitions');
  t.match(readFileSync(avahiFile, 'utf8'), /<type>_http\._tcp<\/type>\n {4}<port>9090<\/port>/, 'the announced port follows the settings');

  // A lock file change reinstalls the dependencies.
  writeFileSync(path.join(app, 'node_modules/.earshot-install-stamp'), 'stale\n');
  writeFileSync(configFile, JSON.stringify({ ...config, port: 9090, wyomingPort: 'off' }, null, 2));
  const third = run(fake, []);
  t.equal(third.code, 0, third.stderr);
  t.notMatch(readFileSync(avahiFile, 'utf8'), '_wyoming', 'no Wyoming server, none announced');
  t.match(third.stdout, /Wyoming: +off\n/);
  t.ok(third.calls.includes('npm install --include=dev --no-audit --no-fund (in $ROOT/opt/earshot)'), 'npm install again');
});

t.test('Pi 4, another prefix and model', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 4 Model B Rev 1.5');
  const r = run(fake, ['--prefix', '/srv/earshot', '--model', 'base.en-q5_1']);
  t.equal(r.code, 0, r.stderr);
  assertCalls(t, r.calls, [
    ...aptCalls,
    'npm install --include=dev --no-audit --no-fund (in $ROOT/srv/earshot)',
    'EARSHOT_PRESET=pi4 EARSHOT_TOOLS=OFF build-native (in $ROOT/srv/earshot)',
    'npm run --silent build:ts (in $ROOT/srv/earshot)',
    'download-model base.en-q5_1 --dir $ROOT/var/lib/earshot/models',
    'systemctl daemon-reload',
    'systemctl enable --now earshot.service',
  ]);
  const unit = readFileSync(path.join(fake.root, 'etc/systemd/system/earshot.service'), 'utf8');
  t.match(unit, /^ExecStart=\S+\/node \/srv\/earshot\/dist\/src\/main\.js$/m);
  t.match(unit, /^WorkingDirectory=\/srv\/earshot$/m);
  t.notOk(existsSync(path.join(fake.root, 'opt/earshot')));
  const config = readConfig(fake);
  t.equal(config.model, 'base.en-q5_1');

  // --model on a later run switches the configured model and keeps the key.
  const again = run(fake, ['--prefix', '/srv/earshot', '--model', 'small.en-q5_1']);
  t.equal(again.code, 0, again.stderr);
  t.ok(again.calls.includes('download-model small.en-q5_1 --dir $ROOT/var/lib/earshot/models'));
  t.same(readConfig(fake), { ...config, model: 'small.en-q5_1' });
  t.equal(mode(path.join(fake.root, 'etc/earshot/config.json')), 0o640);
});

t.test('presets: other arm64 boards, x86-64, --preset, --with-tools', async (t) => {
  const rock = makeFake(t, 'Pine64 RockPro64 v2.1');
  let r = run(rock, []);
  t.equal(r.code, 0, r.stderr);
  t.ok(
    r.calls.some((c) => c.startsWith('EARSHOT_PRESET=portable EARSHOT_TOOLS=OFF build-native')),
    'portable on another arm64 board',
  );

  const pc = makeFake(t, null);
  r = run(pc, [], { FAKE_ARCH: 'amd64' });
  t.equal(r.code, 0, r.stderr);
  t.ok(
    r.calls.some((c) => c.startsWith('EARSHOT_PRESET=native EARSHOT_TOOLS=OFF build-native')),
    'native on amd64',
  );

  const pi5 = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  r = run(pi5, ['--preset', 'portable', '--with-tools']);
  t.equal(r.code, 0, r.stderr);
  t.ok(
    r.calls.some((c) => c.startsWith('EARSHOT_PRESET=portable EARSHOT_TOOLS=ON build-native')),
    '--preset wins over the board',
  );

  r = run(pi5, ['--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^Usage: sudo scripts\/install/);
  t.same(r.calls, []);

  r = run(pi5, ['--preset', 'pi6']);
  t.not(r.code, 0);
  t.match(r.stderr, "--preset must be pi5, pi4, portable or native (got 'pi6')");
  t.same(r.calls, []);
});

t.test('not root: runs itself again with sudo, passing DESTDIR on', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  const r = run(fake, ['--model', 'tiny.en'], { FAKE_UID: '1000', DESTDIR: fake.root }, { root: false });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.calls[0], `sudo env DESTDIR=$ROOT EARSHOT_INSTALL_SHIMS=$SHIMS ${installScript} --model tiny.en`);
  t.ok(r.calls.includes('download-model tiny.en --dir $ROOT/var/lib/earshot/models'));
  t.equal(r.calls.at(-1), 'systemctl enable --now earshot.service');
  t.ok(existsSync(path.join(fake.root, 'etc/earshot/config.json')), 'DESTDIR is the root');
});

t.test('--uninstall keeps the data; --purge removes it', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  t.equal(run(fake, []).code, 0);
  // What systemd makes of StateDirectory= under DynamicUser=yes once the service ran.
  const lib = path.join(fake.root, 'var/lib');
  mkdirSync(path.join(lib, 'private'), { mode: 0o700 });
  cpSync(path.join(lib, 'earshot'), path.join(lib, 'private/earshot'), { recursive: true });
  rmSync(path.join(lib, 'earshot'), { recursive: true });
  symlinkSync('private/earshot', path.join(lib, 'earshot'));
  writeFileSync(path.join(lib, 'private/earshot/api-key'), 'x');

  const r = run(fake, ['--uninstall']);
  t.equal(r.code, 0, r.stderr);
  assertCalls(t, r.calls, ['systemctl disable --now earshot.service', 'systemctl daemon-reload', 'systemctl reset-failed earshot.service']);
  t.notOk(existsSync(path.join(fake.root, 'etc/systemd/system/earshot.service')), 'unit removed');
  t.notOk(existsSync(path.join(fake.root, 'etc/systemd/system/earshot.service.d')), 'drop-in removed');
  t.notOk(existsSync(path.join(fake.root, 'opt/earshot')), 'prefix removed');
  t.notOk(existsSync(path.join(fake.root, 'etc/avahi/services/earshot.service')), 'no longer announced on the LAN');
  t.notOk(existsSync(path.join(fake.root, 'usr/local/bin/earshot')), 'the command line removed');
  t.ok(existsSync(path.join(fake.root, 'etc/earshot/config.json')), 'settings kept');
  t.ok(existsSync(path.join(lib, 'earshot/models/ggml-tiny.en-q5_1.bin')), 'models kept');
  t.match(r.stdout, 'kept');

  // Reinstalling over kept data keeps the key.
  const key = readConfig(fake).apiKey;
  t.equal(run(fake, []).code, 0);
  t.equal(readConfig(fake).apiKey, key);

  const purge = run(fake, ['--uninstall', '--purge']);
  t.equal(purge.code, 0, purge.stderr);
  t.ok(purge.calls.includes('systemctl disable --now earshot.service'));
  for (const p of ['etc/earshot', 'var/lib/earshot', 'var/lib/private/earshot', 'opt/earshot', 'etc/systemd/system/earshot.service']) {
    t.notOk(existsSync(path.join(fake.root, p)) || isLink(path.join(fake.root, p)), `${p} removed`);
  }
  t.same(readdirSync(path.join(lib, 'private')), [], 'nothing else under /var/lib/private touched');

  // Nothing installed: a no-op; a prefix that is not ours is left alone.
  const other = path.join(fake.root, 'opt/earshot/keep-me');
  mkdirSync(path.dirname(other), { recursive: true });
  writeFileSync(other, 'x');
  const none = run(fake, ['--purge']);
  t.equal(none.code, 0, none.stderr);
  t.same(none.calls, []);
  t.ok(existsSync(other), 'a prefix without the install manifest is not removed');
  t.match(none.stdout, 'left alone');
});

const isLink = (p: string): boolean => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};

t.test('refuses an unsupported Node with a clear message, before changing anything', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  for (const version of ['16.20.2', '18.13.0', '22.11.0']) {
    const r = run(fake, [], { FAKE_NODE_VERSION: version });
    t.not(r.code, 0, `node ${version}`);
    t.match(r.stderr, `Node.js ${version} found`);
    t.match(r.stderr, 'needs Node 18 (18.17 or newer) or Node 20');
    t.same(r.calls, [], 'no command run');
    t.notOk(existsSync(path.join(fake.root, 'opt')), 'nothing installed');
  }
  t.match(
    run(fake, [], { FAKE_NODE_VERSION: '24.11.0' }).stderr,
    'Node 22 and 24 need glibc 2.38: Debian 13 / Raspberry Pi OS trixie',
    'bookworm: Node 24 is refused, saying where it runs',
  );
  const ok = run(fake, [], { FAKE_NODE_VERSION: '18.19.0' });
  t.equal(ok.code, 0, `Debian 12's Node 18.19: ${ok.stderr}`);

  const trixie = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0', trixieOsRelease);
  const old = run(trixie, [], { FAKE_NODE_VERSION: '16.20.2' });
  t.not(old.code, 0, 'trixie: node 16');
  t.match(old.stderr, 'on Debian 13 / Raspberry Pi OS trixie earshot needs Node 18 (18.17 or newer), 20, 22 or 24');
  t.same(old.calls, [], 'no command run');
});

t.test('a device upgraded from bookworm to trixie in place keeps its data, key and settings', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  const first = run(fake, [], { FAKE_NODE_VERSION: '18.19.0' });
  t.equal(first.code, 0, `bookworm, Debian's Node 18: ${first.stderr}`);
  const configFile = path.join(fake.root, 'etc/earshot/config.json');
  writeFileSync(configFile, JSON.stringify({ ...readConfig(fake), port: 9090 }, null, 2));
  chmodSync(configFile, 0o640);
  const config = readConfig(fake);
  // What the service keeps in its state directory (the LMDB database, the spool).
  const data = path.join(fake.root, 'var/lib/earshot/state.mdb');
  writeFileSync(data, 'the jobs');

  // apt full-upgrade to trixie: /etc/os-release says so, and Debian's nodejs is Node 20.
  writeFileSync(path.join(fake.root, 'etc/os-release'), trixieOsRelease);
  const upgraded = run(fake, [], { FAKE_NODE_VERSION: '20.19.2' });
  t.equal(upgraded.code, 0, `trixie, Debian's Node 20: ${upgraded.stderr}`);
  t.notMatch(upgraded.stdout, 'warning: made for', 'trixie is a release it is made for');
  t.ok(upgraded.calls.includes('npm install --include=dev --no-audit --no-fund (in $ROOT/opt/earshot)'), "Node's new major line: npm install again");
  t.ok(
    upgraded.calls.includes('EARSHOT_PRESET=pi5 EARSHOT_TOOLS=OFF build-native (in $ROOT/opt/earshot)'),
    "the native build again, against trixie's libraries",
  );
  t.same(readConfig(fake), config, 'settings kept, key unchanged');
  t.equal(mode(configFile), 0o640);
  t.equal(readFileSync(data, 'utf8'), 'the jobs', 'the data kept');
  t.match(upgraded.stdout, 'earshot is upgraded and running');
  t.match(upgraded.stdout, `API key:  ${config.apiKey}\n`);
});

t.test('refuses an unsupported OS with a clear message', async (t) => {
  const fedora = makeFake(t, null, 'NAME="Fedora Linux"\nVERSION_ID=40\nID=fedora\nPRETTY_NAME="Fedora Linux 40"\n');
  let r = run(fedora, [], { FAKE_ARCH: 'amd64' });
  t.not(r.code, 0);
  t.match(r.stderr, 'unsupported OS: Fedora Linux 40; earshot installs on Raspberry Pi OS bookworm or trixie (64-bit) or Debian 12 or 13');
  t.same(r.calls, []);

  const noRelease = makeFake(t, null);
  rmSync(path.join(noRelease.root, 'etc/os-release'));
  r = run(noRelease, []);
  t.not(r.code, 0);
  t.match(r.stderr, 'unsupported OS: no /etc/os-release');

  const pi32 = makeFake(t, 'Raspberry Pi 4 Model B Rev 1.5');
  r = run(pi32, [], { FAKE_ARCH: 'armhf' });
  t.not(r.code, 0);
  t.match(r.stderr, 'unsupported OS: this is a 32-bit system (armhf); earshot needs 64-bit Raspberry Pi OS (arm64)');
  t.same(r.calls, []);

  // No apt-get: PATH holds only the stand-ins (but apt-get's) and the few tools the checks use.
  const bare = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  rmSync(path.join(bare.shims, 'apt-get'));
  const bin = path.join(path.dirname(bare.root), 'bin');
  mkdirSync(bin);
  for (const tool of ['bash', 'env', 'dirname', 'basename', 'cat', 'tr']) {
    symlinkSync(execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), path.join(bin, tool));
  }
  r = run(bare, [], { PATH: bin });
  t.not(r.code, 0);
  t.match(r.stderr, 'unsupported OS: Debian GNU/Linux 12 (bookworm) has no apt-get/dpkg');
});

t.test('a config.json that is not JSON stops the install before it changes anything', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  mkdirSync(path.join(fake.root, 'etc/earshot'));
  writeFileSync(path.join(fake.root, 'etc/earshot/config.json'), '{"model": ');
  const r = run(fake, []);
  t.not(r.code, 0);
  t.match(r.stderr, 'config.json is not valid JSON: fix or remove it, then run scripts/install again');
  t.same(r.calls, []);
  t.notOk(existsSync(path.join(fake.root, 'opt')));
});

t.test('a failed model download stops the install with a hint', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  const r = run(fake, [], { FAKE_DOWNLOAD_FAIL: '1' });
  t.not(r.code, 0);
  t.match(r.stderr, 'the download of model tiny.en-q5_1 failed (see above); run scripts/install again to resume it');
  t.notOk(
    r.calls.some((c) => c.startsWith('systemctl')),
    'the service is not started',
  );
});

/** A copy of the checkout's files (what a tarball of it holds) at `tree`. */
function copyCheckout(tree: string): void {
  const files = execFileSync('git', ['-C', projectRoot, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' })
    .split('\0')
    .filter((f) => f && existsSync(path.join(projectRoot, f)) && !lstatSync(path.join(projectRoot, f)).isSymbolicLink());
  for (const f of files) cpSync(path.join(projectRoot, f), path.join(tree, f));
}

t.test('from a git worktree whose node_modules is a symlink: the link is not copied, its target not touched', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  const tree = path.join(path.dirname(fake.root), 'earshot-worktree');
  copyCheckout(tree);
  execFileSync('git', ['init', '-q', tree]);
  const shared = path.join(path.dirname(fake.root), 'shared-node_modules');
  mkdirSync(path.join(shared, 'typescript'), { recursive: true });
  symlinkSync(shared, path.join(tree, 'node_modules'));
  const r = run(fake, [], {}, { script: path.join(tree, 'scripts/install') });
  t.equal(r.code, 0, r.stderr);
  const app = path.join(fake.root, 'opt/earshot');
  t.notOk(lstatSync(path.join(app, 'node_modules')).isSymbolicLink(), 'the app has its own node_modules');
  t.same(readdirSync(shared), ['typescript'], 'the shared node_modules is untouched');
});

t.test('from a tarball (no git): copies the tree without builds, dependencies or models', async (t) => {
  const fake = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  const tree = path.join(path.dirname(fake.root), 'earshot-src');
  copyCheckout(tree);
  for (const junk of ['node_modules/x/index.js', 'dist/src/main.js', 'models/ggml-x.bin', 'native/build/Release/earshot.node', 'var/api-key']) {
    mkdirSync(path.dirname(path.join(tree, junk)), { recursive: true });
    writeFileSync(path.join(tree, junk), 'junk');
  }
  const r = run(fake, [], {}, { script: path.join(tree, 'scripts/install') });
  t.equal(r.code, 0, r.stderr);
  const app = path.join(fake.root, 'opt/earshot');
  t.ok(existsSync(path.join(app, 'src/main.ts')));
  t.ok(existsSync(path.join(app, 'scripts/install')));
  for (const junk of ['node_modules/x', 'models', 'var']) t.notOk(existsSync(path.join(app, junk)), `${junk} not copied`);
  t.equal(readFileSync(path.join(app, 'dist/src/main.js'), 'utf8'), '// built\n', 'dist is built, not copied');
  t.equal(readFileSync(path.join(app, 'native/build/Release/earshot.node'), 'utf8'), '', 'the addon is built, not copied');
});

t.test('--fleet-broker runs the fleet broker here; another device joins with --fleet; --no-fleet leaves', async (t) => {
  const first = makeFake(t, 'Raspberry Pi 5 Model B Rev 1.0');
  const r = run(first, ['--fleet-broker']);
  t.equal(r.code, 0, r.stderr);
  t.ok(
    r.calls.some((c) => /^apt-get install .*\bnats-server$/.test(c)),
    "Debian's nats-server installed",
  );
  const brokerCalls = r.calls.filter((c) => c.includes('nats-server.service'));
  t.same(brokerCalls, ['systemctl enable nats-server.service', 'systemctl restart nats-server.service'], 'the broker enabled and (re)started');

  const confPath = path.join(first.root, 'etc/nats-server-earshot.conf');
  const conf = readFileSync(confPath, 'utf8');
  const token = /token: "([A-Za-z0-9_-]{32})"/.exec(conf)?.[1] ?? '';
  t.ok(token, 'a generated token');
  t.match(conf, /^listen: 0\.0\.0\.0:4222$/m, 'on the LAN');
  t.match(conf, /^ {2}store_dir: \/var\/lib\/nats-server$/m);
  t.match(conf, /^ {2}max_file_store: [1-9]\d*$/m, 'JetStream bounded to half of the disk');
  t.equal(mode(confPath), 0o640, 'the token is not world-readable');
  t.equal(
    readFileSync(path.join(first.root, 'etc/systemd/system/nats-server.service.d/earshot.conf'), 'utf8').split('\n').slice(1).join('\n'),
    '[Service]\nExecStart=\nExecStart=/usr/sbin/nats-server -c /etc/nats-server-earshot.conf\n',
    "a drop-in points Debian's unit at the file (its own /etc/nats-server.conf untouched)",
  );
  t.notOk(existsSync(path.join(first.root, 'etc/nats-server.conf')), "Debian's config file not written");
  // This device is in the fleet, and the service reads the settings as written.
  t.match(readConfig(first), { fleetUrl: 'nats://127.0.0.1:4222', fleetToken: token });
  const settings = loadConfig({ file: path.join(first.root, 'etc/earshot/config.json'), env: {} });
  t.equal(settings.fleetUrl, 'nats://127.0.0.1:4222');
  t.equal(settings.fleetToken, token);
  t.match(r.stdout, `sudo scripts/install --fleet nats://192.168.1.42:4222 --fleet-token ${token}`, 'the summary says how a device joins');

  // The file is one a real nats-server runs with: JetStream on, the token required. (On
  // loopback and a free port here, its store a directory of the test's: the helper's flags
  // give both, and the file's store_dir line goes, which the server would call a duplicate.)
  const testConf = path.join(path.dirname(first.root), 'nats-server.conf');
  writeFileSync(testConf, conf.replace(/^ {2}store_dir: .*\n/m, ''));
  const broker = await NatsServer.start(t, undefined, ['-c', testConf]);
  const nc = await connect({ servers: broker.url, token });
  t.teardown(() => nc.close());
  const info = await (await jetstreamManager(nc)).getAccountInfo();
  t.ok(info.limits.max_storage > 0 || info.limits.max_storage === -1, 'JetStream answers with the token');
  await t.rejects(connect({ servers: broker.url, reconnect: false }), /Authorization Violation/i, 'no token, no connection');

  // Again: the token is kept (the devices that joined keep working).
  t.equal(run(first, ['--fleet-broker']).code, 0);
  t.match(readFileSync(confPath, 'utf8'), `token: "${token}"`, 'token kept');

  // A second device joins; a plain upgrade keeps it in; --no-fleet takes it out.
  const second = makeFake(t, 'Raspberry Pi 4 Model B Rev 1.4');
  const join = run(second, ['--fleet', 'nats://192.168.1.42:4222', '--fleet-token', token]);
  t.equal(join.code, 0, join.stderr);
  t.match(readConfig(second), { fleetUrl: 'nats://192.168.1.42:4222', fleetToken: token });
  t.notOk(
    join.calls.some((c) => c.includes('nats-server')),
    'no broker on a device that joins',
  );
  t.match(join.stdout, 'Fleet:    nats://192.168.1.42:4222');
  const upgrade = run(second, []);
  t.equal(upgrade.code, 0, upgrade.stderr);
  t.match(readConfig(second), { fleetUrl: 'nats://192.168.1.42:4222', fleetToken: token }, 'an upgrade keeps the fleet');
  t.match(upgrade.stdout, 'Fleet:    nats://192.168.1.42:4222');
  const apiKey = readConfig(second).apiKey;
  t.equal(run(second, ['--no-fleet']).code, 0);
  const alone = readConfig(second);
  t.notOk('fleetUrl' in alone || 'fleetToken' in alone, 'out of the fleet');
  t.equal(alone.apiKey, apiKey, 'the rest of the settings kept');
  // Settings without a key (the service then keeps its own in /var/lib/earshot/api-key): the
  // unset ones are read as unset, not as the end of the file.
  writeFileSync(path.join(second.root, 'etc/earshot/config.json'), '{"model": "tiny.en-q5_1"}\n');
  const keyless = run(second, ['--fleet', 'nats://192.168.1.42:4222']);
  t.equal(keyless.code, 0, keyless.stderr);
  t.same(readConfig(second), { model: 'tiny.en-q5_1', fleetUrl: 'nats://192.168.1.42:4222' }, 'no token: none written');

  for (const [args, message] of [
    [['--fleet', 'http://192.168.1.42:4222'], /--fleet must be the broker's URL/],
    [['--fleet-token', token], /--fleet-token goes with --fleet URL/],
    [['--fleet', 'nats://a:4222', '--fleet-token', 'a b'], /--fleet-token must be/],
  ] as const) {
    const bad = run(second, [...args]);
    t.equal(bad.code, 1, `${args.join(' ')} refused`);
    t.match(bad.stderr, message);
    t.same(bad.calls, [], 'before changing anything');
  }

  // --uninstall stops the broker and removes the drop-in; --purge its token and data too.
  const gone = run(first, ['--uninstall']);
  t.equal(gone.code, 0, gone.stderr);
  t.ok(gone.calls.includes('systemctl disable --now nats-server.service'), 'broker stopped');
  t.notOk(existsSync(path.join(first.root, 'etc/systemd/system/nats-server.service.d')), 'drop-in removed');
  t.ok(existsSync(confPath), 'the broker settings kept without --purge');
  t.equal(run(first, ['--uninstall', '--purge']).code, 0);
  t.notOk(existsSync(confPath) || existsSync(path.join(first.root, 'var/lib/nats-server')), 'broker settings and data purged');
});
