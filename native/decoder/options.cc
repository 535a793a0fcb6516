#include "options.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "failure.h"

namespace earshot::decode {
namespace {

const char kUsage[] = R"(usage: earshot-decode --input IN (--output OUT | --output-fd N) --format FORMAT --max-seconds S [options]

Decodes IN and writes OUT (or the inherited descriptor N, e.g. a pipe) as 16 kHz mono float32
little-endian PCM, then prints one JSON line:
  {"ok":true,"samples":N,"durationMs":N,"inputRate":N,"inputChannels":N,"inputFrames":N,
   "container":"wav|rf64|aiff|au|flac|ogg|mp3|raw","codec":"...","seccomp":true|false}
  {"ok":false,"code":"ERR_...","message":"..."}

  --output-fd N       write to descriptor N (3 or above, inherited, e.g. the write end of a
                      pipe) instead of a file; the output-length limit is then the
                      --max-seconds check alone (RLIMIT_FSIZE applies to files only)
  --format auto|basic|l16|mulaw|alaw
                      auto: the container is detected from the data (WAV, RF64, AIFF, AU,
                      FLAC, Ogg Vorbis/Opus, MPEG audio); basic: an AU file when the data
                      starts with ".snd", else raw 8 kHz mono mu-law; l16/mulaw/alaw: raw
  --rate N            sample rate of raw input (required for l16, mulaw, alaw)
  --channels M        channels of raw input (default 1)
  --endian little|big|auto
                      byte order of l16 (default auto: detected from the signal)
  --container wav|aiff|au|flac|ogg|mp3
                      with auto: the container the data must be (else ERR_AUDIO_UNSUPPORTED)
  --codec opus|vorbis with --container ogg: the codec the stream must use
  --max-seconds S     fail with ERR_AUDIO_TOO_LONG beyond S seconds of audio
  --max-memory-mb M   address-space limit (default 256; 0 = none)
  --max-cpu-seconds C CPU-time limit; SIGXCPU after C s, SIGKILL after C+1 s
                      (default 10 + S/4)
  --allow-unsandboxed decode even when the seccomp filter cannot be installed (the report
                      then says "seccomp":false); without it such a decoder refuses with
                      ERR_DECODER_UNSANDBOXED before it reads a byte of the input
  --no-seccomp        skip the seccomp filter (debugging only; needs --allow-unsandboxed)
  --sandbox-selftest  after sandboxing, attempt socket(2): the process must die of SIGSYS

Exit codes: 0 ok, 1 internal error, 2 usage, 3 I/O error, 10 unsupported format,
11 corrupt audio, 12 too long, 13 no samples, 14 resource limit, 15 no sandbox.
)";

long ParseInt(const char* name, const char* value, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long v = strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < lo || v > hi) {
    Fail(Exit::kUsage, Format("%s expects an integer between %ld and %ld, got \"%s\"", name, lo, hi, value));
  }
  return v;
}

double ParseNumber(const char* name, const char* value, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  double v = strtod(value, &end);
  if (errno != 0 || end == value || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
    Fail(Exit::kUsage, Format("%s expects a number between %g and %g, got \"%s\"", name, lo, hi, value));
  }
  return v;
}

}  // namespace

Options ParseOptions(int argc, char** argv) {
  Options o;
  bool max_seconds_set = false;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--help") {
      fputs(kUsage, stderr);
      Fail(Exit::kUsage, "usage requested");
    }
    if (arg == "--no-seccomp") {
      o.seccomp = false;
      continue;
    }
    if (arg == "--allow-unsandboxed") {
      o.allow_unsandboxed = true;
      continue;
    }
    if (arg == "--sandbox-selftest") {
      o.selftest = true;
      continue;
    }
    if (i + 1 >= argc) Fail(Exit::kUsage, Format("%s: missing value or unknown option (try --help)", arg.c_str()));
    const char* value = argv[++i];
    std::string v = value;
    if (arg == "--input") {
      o.input = v;
    } else if (arg == "--output") {
      o.output = v;
    } else if (arg == "--output-fd") {
      o.output_fd = static_cast<int>(ParseInt("--output-fd", value, 3, 1023));
    } else if (arg == "--format") {
      o.format_set = true;
      if (v == "auto") o.format = InputFormat::kAuto;
      else if (v == "basic") o.format = InputFormat::kBasic;
      else if (v == "l16") o.format = InputFormat::kL16;
      else if (v == "mulaw") o.format = InputFormat::kMulaw;
      else if (v == "alaw") o.format = InputFormat::kAlaw;
      else Fail(Exit::kUsage, "--format expects auto, basic, l16, mulaw or alaw, got \"" + v + "\"");
    } else if (arg == "--rate") {
      o.rate = static_cast<int>(ParseInt("--rate", value, kMinRate, kMaxRate));
    } else if (arg == "--channels") {
      o.channels = static_cast<int>(ParseInt("--channels", value, 1, kMaxChannels));
    } else if (arg == "--endian") {
      if (v == "auto") o.endian = Endian::kAuto;
      else if (v == "little") o.endian = Endian::kLittle;
      else if (v == "big") o.endian = Endian::kBig;
      else Fail(Exit::kUsage, "--endian expects little, big or auto, got \"" + v + "\"");
    } else if (arg == "--container") {
      if (v != "wav" && v != "aiff" && v != "au" && v != "flac" && v != "ogg" && v != "mp3") {
        Fail(Exit::kUsage, "--container expects wav, aiff, au, flac, ogg or mp3, got \"" + v + "\"");
      }
      o.container = v;
    } else if (arg == "--codec") {
      if (v != "opus" && v != "vorbis") Fail(Exit::kUsage, "--codec expects opus or vorbis, got \"" + v + "\"");
      o.codec = v;
    } else if (arg == "--max-seconds") {
      o.max_seconds = ParseNumber("--max-seconds", value, 0.001, 7 * 24 * 3600.0);
      max_seconds_set = true;
    } else if (arg == "--max-memory-mb") {
      o.max_memory_mb = ParseNumber("--max-memory-mb", value, 0, 1 << 20);
    } else if (arg == "--max-cpu-seconds") {
      o.max_cpu_seconds = ParseNumber("--max-cpu-seconds", value, 1, 7 * 24 * 3600.0);
    } else {
      Fail(Exit::kUsage, "unknown option " + arg + " (try --help)");
    }
  }
  if (o.input.empty() || (o.output.empty() == (o.output_fd < 0))) {
    Fail(Exit::kUsage, "--input and --output are required (or --output-fd instead of --output)");
  }
  if (!o.format_set) Fail(Exit::kUsage, "--format is required");
  if (!max_seconds_set) Fail(Exit::kUsage, "--max-seconds is required");
  bool raw = o.format == InputFormat::kL16 || o.format == InputFormat::kMulaw || o.format == InputFormat::kAlaw;
  if (raw && o.rate == 0) Fail(Exit::kUsage, "--rate is required for raw formats");
  if (!raw && o.rate != 0) Fail(Exit::kUsage, "--rate only applies to raw formats");
  if (!o.codec.empty() && o.container != "ogg") Fail(Exit::kUsage, "--codec requires --container ogg");
  if (!o.container.empty() && o.format != InputFormat::kAuto) Fail(Exit::kUsage, "--container requires --format auto");
  if (o.max_cpu_seconds == 0) o.max_cpu_seconds = std::ceil(10 + o.max_seconds / 4);
  return o;
}

}  // namespace earshot::decode
