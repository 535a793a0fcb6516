// DiskSpace: the free space and the floor; the largest file the disk could ever hold.
import { statfsSync } from 'node:fs';

import t from 'tap';

import { DiskSpace } from '../../src/jobs/disk-space.js';

t.test('largestPossible: the file system size less the floor, never negative', async (t) => {
  const disk = (floor: number) =>
    new DiskSpace(
      '/x',
      floor,
      () => 10,
      () => 1000,
    );
  t.equal(disk(100).largestPossible(), 900);
  t.equal(disk(2000).largestPossible(), 0);
});

t.test("largestPossible on this machine: statfs's size less root's reserve, at least the free space", async (t) => {
  const dir = t.testdir();
  const s = statfsSync(dir);
  const disk = new DiskSpace(dir, 0);
  t.equal(disk.largestPossible(), (s.blocks - (s.bfree - s.bavail)) * s.bsize);
  t.ok(disk.largestPossible() >= disk.free(), 'the free space fits in it');
});

t.test('admit: an upload larger than the disk can ever hold is 413, not "try again later"', async (t) => {
  const disk = new DiskSpace(
    '/x',
    100,
    () => 500,
    () => 1000,
  );
  t.throws(() => disk.admit(901), { code: 'ERR_PAYLOAD_TOO_LARGE', message: /of audio is more than this device's disk can ever hold/ });
  t.throws(() => disk.admit(450), { code: 'ERR_INSUFFICIENT_STORAGE' }, 'fits the disk, not the free space: wait');
  t.type(disk.admit(400), 'function', 'fits now');
});

t.test("admit reads the file system's size once, and again before it refuses an upload as too large", async (t) => {
  let size = 1000;
  let sizeReads = 0;
  const disk = new DiskSpace(
    '/x',
    100,
    () => 10_000,
    () => {
      sizeReads++;
      return size;
    },
  );
  for (let i = 0; i < 5; i++) disk.admit(10)();
  t.equal(sizeReads, 1, 'one read for five uploads');
  size = 5000; // the file system grew (a resized partition)
  t.type(disk.admit(2000), 'function', 'an upload the old size refused fits the new one');
  t.equal(sizeReads, 2);
  t.throws(() => disk.admit(4901), { code: 'ERR_PAYLOAD_TOO_LARGE' });
  t.equal(sizeReads, 3, 'read again before refusing');
});
