// A wall clock the tests step and a monotonic clock they advance, as a Pi without a
// real-time clock sees them: the monotonic one only ever moves forward with real time.

const year = 365 * 24 * 3600 * 1000;
export const hour = 3600 * 1000;
export const fiveYears = 5 * year;

export interface FakeTime {
  wall(): number;
  monotonic(): number;
  /** Real time passes: both clocks move. */
  advance(ms: number): void;
  /** The wall clock alone jumps (NTP steps it, or someone sets it). */
  step(ms: number): void;
  /** The wall clock alone is set to `at`. */
  setWall(at: number): void;
}

/** Both clocks; the wall starts at `start` (default 2027-01-01, after the release floor). */
export function fakeTime(start = Date.UTC(2027, 0, 1)): FakeTime {
  let monotonic = 5_000;
  let wallOffset = start - monotonic;
  return {
    wall: () => monotonic + wallOffset,
    monotonic: () => monotonic,
    advance: (ms) => {
      monotonic += ms;
    },
    step: (ms) => {
      wallOffset += ms;
    },
    setWall: (at) => {
      wallOffset = at - monotonic;
    },
  };
}
