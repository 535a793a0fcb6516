// Which uWebSockets.js build loads on which system (Node ABI × glibc × arch), and the
// refusals: never the packages' JavaScript fallback.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import t from 'tap';

import { AppError } from '../../src/errors.js';
import { chooseUws, loadUws, thisSystem, type UwsSystem, uwsBuilds } from '../../src/http/uws.js';

const linux = (arch: string, abi: string, glibc: string | undefined): UwsSystem => ({ platform: 'linux', arch, abi, glibc });
const bookworm = '2.36';
const trixie = '2.41';

t.test('the build for each supported Node on bookworm and trixie, x64 and arm64', async (t) => {
  const table: [string, string, string, string][] = [
    // arch, ABI, glibc, package
    ['x64', '108', bookworm, 'uWebSockets.js'], // Node 18
    ['x64', '115', bookworm, 'uWebSockets.js'], // Node 20
    ['arm64', '108', bookworm, 'uWebSockets.js'],
    ['arm64', '115', bookworm, 'uWebSockets.js'],
    ['arm64', '108', trixie, 'uWebSockets.js'], // Node 18: only v20.30 has it
    ['x64', '115', trixie, 'uWebSockets.js-v20.57'], // Node 20: the newer build when glibc allows
    ['arm64', '115', trixie, 'uWebSockets.js-v20.57'],
    ['x64', '127', trixie, 'uWebSockets.js-v20.57'], // Node 22
    ['arm64', '137', trixie, 'uWebSockets.js-v20.57'], // Node 24
    ['arm64', '141', '2.38', 'uWebSockets.js-v20.57'], // Node 25, glibc exactly 2.38
    ['x64', '115', '2.37', 'uWebSockets.js'],
    ['arm', '115', trixie, 'uWebSockets.js'], // 32-bit Raspberry Pi OS: v20.30 only
  ];
  for (const [arch, abi, glibc, pkg] of table) {
    const choice = chooseUws(linux(arch, abi, glibc));
    t.ok(choice.ok, `${arch} ABI ${abi} glibc ${glibc}`);
    if (choice.ok) {
      t.equal(choice.build.packageName, pkg, `${arch} ABI ${abi} glibc ${glibc} → ${pkg}`);
      t.equal(choice.binaryName, `uws_linux_${arch}_${abi}.node`);
    }
  }
});

t.test('glibc versions compare numerically (2.100 > 2.38 > 2.9)', async (t) => {
  const v = (glibc: string) => {
    const c = chooseUws(linux('x64', '137', glibc));
    return c.ok ? c.build.packageName : 'refused';
  };
  t.equal(v('2.100'), 'uWebSockets.js-v20.57');
  t.equal(v('3.0'), 'uWebSockets.js-v20.57');
  t.equal(v('2.9'), 'refused');
  t.equal(v('2.37.9'), 'refused');
  t.equal(v('garbage'), 'refused');
});

t.test('refusals name the reason and the fix', async (t) => {
  const refusal = (s: UwsSystem) => {
    const c = chooseUws(s);
    if (c.ok) throw new Error(`expected a refusal for ${JSON.stringify(s)}`);
    return c;
  };

  // Node 22/24 on bookworm: the build exists, glibc is too old.
  for (const abi of ['127', '137']) {
    const r = refusal(linux('arm64', abi, bookworm));
    t.match(r.reason, /needs glibc 2\.38 or newer; this system has glibc 2\.36/);
    t.match(r.reason, abi === '127' ? /Node 22 \(ABI 127\)/ : /Node 24 \(ABI 137\)/);
    t.match(r.solutions.join('\n'), /use Node 18 or Node 20 \(Debian 12/);
    t.match(r.solutions.join('\n'), /glibc 2\.38 or newer \(Debian 13 \/ Raspberry Pi OS trixie\)/);
  }
  // Node 22 on a 32-bit system: no build at all for that pair.
  t.match(refusal(linux('arm', '127', trixie)), {
    reason: /no uWebSockets\.js build has a binary for Node 22 \(ABI 127\) on linux-arm/,
    solutions: [/Node 18, Node 20/],
  });
  // An ABI nobody ships (Node 16, Node 26).
  for (const abi of ['93', '147']) {
    t.match(refusal(linux('x64', abi, trixie)), {
      reason: /no uWebSockets\.js build has a binary/,
      solutions: [/Use one of Node 20, Node 22, Node 24, Node 25, Node 18/],
    });
  }
  t.match(refusal(linux('x64', '115', '2.27')), { reason: /needs glibc 2\.28 or newer/, solutions: [/Or upgrade/] });
  t.match(refusal(linux('arm64', '115', undefined)), { reason: /need glibc; .*none \(musl\?\)/ });
  t.match(refusal(linux('riscv64', '115', trixie)), { reason: /no uWebSockets\.js build has binaries for linux-riscv64/ });
  t.match(refusal({ platform: 'darwin', arch: 'arm64', abi: '115', glibc: undefined }), { reason: /Linux only/ });
});

t.test('loadUws refuses with ERR_ADDON_LOAD and "Possible solutions", never the fallback', async (t) => {
  const err = t.throws(() => loadUws(linux('x64', '137', bookworm))) as AppError;
  t.ok(err instanceof AppError);
  t.equal(err.code, 'ERR_ADDON_LOAD');
  t.match(err.message, /Node ABI 137, glibc 2\.36:\n- uWebSockets\.js for Node 24 \(ABI 137\) needs glibc 2\.38/);
  t.match(err.message, /Possible solutions:\n- On this system, use Node/);
});

t.test('this host: the chosen binary loads and is what the table says', async (t) => {
  const system = thisSystem();
  t.match(system.glibc, /^\d+\.\d+/, 'glibc version from process.report');
  const choice = chooseUws(system);
  t.ok(choice.ok, 'a build fits this host');
  const loaded = loadUws(system);
  t.type(loaded.uws.App, 'function', 'the native module, not a fallback');
  t.ok(existsSync(loaded.binary), loaded.binary);
  t.match(loaded.binary, /\.node$/);
  if (choice.ok) t.equal(loaded.build, choice.build);
  if (system.abi === '115' && system.glibc === '2.36' && system.arch === 'x64') {
    // The CI host (Debian 12, Node 20): v20.30.
    t.equal(loaded.build.packageName, 'uWebSockets.js');
    t.match(loaded.binary, /node_modules\/uWebSockets\.js\/binaries\/uws_linux_x64_115\.node$/);
  }
});

t.test('every binary the table promises is in the installed packages', async (t) => {
  const require = createRequire(import.meta.url);
  for (const build of uwsBuilds) {
    const dir = path.join(path.dirname(require.resolve(build.packageName)), build.binaryDir);
    for (const abi of Object.keys(build.abis)) {
      for (const arch of build.arches) t.ok(existsSync(path.join(dir, `uws_linux_${arch}_${abi}.node`)), `${build.packageName}: ${arch} ABI ${abi}`);
    }
  }
});
