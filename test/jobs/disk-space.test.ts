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
