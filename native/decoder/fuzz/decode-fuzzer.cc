// A libFuzzer target for earshot-decode's parsing: container detection (sniff.cc), the
// truncation checks (integrity.cc), and decoding through libsndfile and libmpg123 into the PCM
// sink, in the order main.cc's Run() applies them. Built by build-fuzzer (next to this file)
// with clang -fsanitize=fuzzer,address,undefined into native/build-fuzz/; never part of the
// product build or CI. docs/fuzzing.md says how to run it.
//
// What is left out, on purpose: the resource limits and the seccomp filter (sandbox.cc: they
// confine the process, they parse nothing), the allocation tracking (alloc-tracking.cc
// replaces malloc, which AddressSanitizer owns here), the command line and the JSON report.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>

#include "../failure.h"
#include "../input.h"
#include "../integrity.h"
#include "../mpg123-path.h"
#include "../options.h"
#include "../pcm-sink.h"
#include "../sndfile-path.h"
#include "../sniff.h"

namespace earshot::decode {
// alloc-tracking.cc is not linked (see above): no allocation failure is ever tracked.
bool AllocationFailed() { return false; }
}  // namespace earshot::decode

namespace {

using namespace earshot::decode;

// Audio longer than this fails as too long, like --max-seconds: a lying header must not make
// one input decode for minutes.
constexpr double kMaxSeconds = 60;

// Mirrors Run() in main.cc from the sniffing on, for --format auto (what uploads of every
// container meet). Every expected failure is a DecodeError.
void Decode(int in_fd, int64_t size, int out_fd) {
  Options o;
  o.max_seconds = kMaxSeconds;
  Input in(in_fd, size);
  if (in.size() == 0) Fail(Exit::kEmpty, "empty");
  Sniff sniff = SniffInput(in);
  if (sniff.family == Family::kUnknown) Fail(Exit::kUnsupported, "unknown");
  Family family = sniff.family;
  switch (family) {
    case Family::kWav:
    case Family::kRf64:
    case Family::kAiff:
      if (ChunkedHeaderTruncated(in, family)) Fail(Exit::kCorrupt, "truncated");
      break;
    case Family::kAu:
      if (AuTruncated(in)) Fail(Exit::kCorrupt, "truncated");
      break;
    case Family::kOgg:
      if (OggTruncated(in)) Fail(Exit::kCorrupt, "truncated");
      break;
    default:
      break;
  }
  PcmSink sink(out_fd, o.max_seconds);
  if (family == Family::kMpeg) {
    DecodeWithMpg123(in, o, sniff.mpeg_start, sink);
  } else {
    DecodeWithSndfile(in, o, family, sink);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  // The codecs read the upload through a descriptor, as they do in the decoder.
  int fd = memfd_create("upload", MFD_CLOEXEC);
  if (fd < 0) __builtin_trap();
  for (size_t done = 0; done < size;) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) __builtin_trap();
    done += static_cast<size_t>(n);
  }
  lseek(fd, 0, SEEK_SET);
  try {
    Decode(fd, static_cast<int64_t>(size), out_fd);
  } catch (const DecodeError&) {
    // An expected failure: the decoder reports it and exits.
  } catch (const std::bad_alloc&) {
    // The decoder reports ERR_AUDIO_LIMIT (run with -malloc_limit_mb to find what asks for too much).
  }
  close(fd);
  return 0;
}
