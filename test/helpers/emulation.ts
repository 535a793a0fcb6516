// scripts/arm64-test runs test files on arm64 under qemu-user and tells them so with
// EARSHOT_EMULATION=qemu-aarch64. There, qemu-user has no seccomp and ignores RLIMIT_AS
// (the decoder's tests expect that), and everything is slower: Node starts and compiles
// 10-30x slower, whisper.cpp's kernels run 100-400x slower (the test model's 120 s
// recording: about 5 s here, over 120 s emulated). Tests whose clocks assume real hardware
// scale them with `budget`.

/** True under scripts/arm64-test's qemu-user emulation. */
export const emulated = process.env.EARSHOT_EMULATION === 'qemu-aarch64';

/** How many times longer the test model's work takes under emulation, with margin. */
export const emulationSlowdown = emulated ? 50 : 1;

/** A time budget in milliseconds written for real hardware, scaled under emulation. */
export function budget(ms: number): number {
  return ms * emulationSlowdown;
}
