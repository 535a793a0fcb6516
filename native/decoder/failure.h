// How earshot-decode fails: every expected failure is a DecodeError thrown with an exit
// code; main() turns it into the one JSON line on stdout and the process's exit status.
#ifndef EARSHOT_DECODE_FAILURE_H_
#define EARSHOT_DECODE_FAILURE_H_

#include <string>

namespace earshot::decode {

// The exit codes are part of the CLI contract (kUsage in options.cc, and
// src/engine/audio-decoder.ts, which reads them when no JSON line arrived).
enum class Exit : int {
  kOk = 0,
  kInternal = 1,
  kUsage = 2,
  kIo = 3,
  kUnsupported = 10,
  kCorrupt = 11,
  kTooLong = 12,
  kEmpty = 13,
  kLimit = 14,
  kUnsandboxed = 15,
};

// The error code of the JSON report for an exit code.
const char* CodeFor(Exit exit);

// Thrown for every expected failure; main() turns it into the JSON line and exit code.
struct DecodeError {
  Exit exit;
  std::string message;
};

[[noreturn]] void Fail(Exit exit, std::string message);

// printf into a std::string (messages are short: at most 511 bytes are kept).
std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_FAILURE_H_
