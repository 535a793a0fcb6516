// earshot-decode's command line (the full contract is kUsage in options.cc).
#ifndef EARSHOT_DECODE_OPTIONS_H_
#define EARSHOT_DECODE_OPTIONS_H_

#include <string>

namespace earshot::decode {

constexpr int kOutputRate = 16000;
constexpr int kMinRate = 1000;      // below this a header is lying, not describing speech
constexpr int kMaxRate = 768000;    // the highest rate real recorders produce
constexpr int kMaxChannels = 16;    // IBM's limit for multichannel uploads

enum class InputFormat { kAuto, kBasic, kL16, kMulaw, kAlaw };
enum class Endian { kAuto, kLittle, kBig };

struct Options {
  std::string input;
  std::string output;
  // Instead of `output`: an inherited descriptor (a pipe to the engine), kept open by the
  // sandbox; -1 = none.
  int output_fd = -1;
  InputFormat format = InputFormat::kAuto;
  bool format_set = false;
  int rate = 0;
  int channels = 1;
  Endian endian = Endian::kAuto;
  std::string container;  // expected container, empty = any
  std::string codec;      // expected Ogg codec, empty = any
  double max_seconds = 0;
  double max_memory_mb = 256;
  double max_cpu_seconds = 0;  // 0 = default, derived from max_seconds
  bool seccomp = true;
  // The operator's opt-in: decode even when the seccomp filter cannot be installed.
  bool allow_unsandboxed = false;
  bool selftest = false;
};

// Parses and cross-checks argv; fails with Exit::kUsage (after printing kUsage for --help).
Options ParseOptions(int argc, char** argv);

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_OPTIONS_H_
