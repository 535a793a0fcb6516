// earshot-decode: earshot's out-of-process audio decoder.
//
// It reads one untrusted upload and writes it as 16 kHz mono float32 little-endian PCM, the
// input of the whisper engine (to a pipe the engine reads window by window, or to a file),
// then prints exactly one JSON line on stdout describing the
// result. Uploads are hostile until proven otherwise, so this runs as its own short-lived
// process: resource limits are in place before the first byte of input is read, and a
// seccomp filter leaves it only the system calls that decoding needs. A malicious or broken
// file can therefore at worst fail its own job, never the service.
//
// Decoding uses Debian's maintained codec libraries: libsndfile (WAV, RF64, AIFF, AU, FLAC,
// Ogg Vorbis, Ogg Opus, and the raw formats), libmpg123 directly for MPEG audio (libsndfile
// trusts an MP3's estimated length and silently stops early on VBR files without a Xing
// header), and libsoxr for resampling. Everything streams through fixed-size buffers, so
// memory does not grow with the length of the audio.
//
// The CLI and JSON contract are described in kUsage (options.cc); src/engine/audio-decoder.ts
// is the one caller. Where the parts are:
//   main.cc            the order of things: options, limits, open, sandbox, sniff, decode, report
//   options.cc         the command line
//   sandbox.cc         resource limits and the seccomp allow-list (libseccomp)
//   alloc-tracking.cc  tells "the memory limit bit" apart from "the file is corrupt"
//   input.cc           positional reads of the upload
//   sniff.cc           container detection from the data
//   integrity.cc       truncation checks that the codec libraries do not make
//   sndfile-path.cc    decoding through libsndfile
//   mpg123-path.cc     decoding MPEG audio through libmpg123
//   pcm-sink.cc        downmix, resample, sanitize, write
//   report.cc          the JSON line; failure.cc: exit codes and their error codes

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "alloc-tracking.h"
#include "failure.h"
#include "input.h"
#include "integrity.h"
#include "mpg123-path.h"
#include "options.h"
#include "pcm-sink.h"
#include "report.h"
#include "sandbox.h"
#include "sndfile-path.h"
#include "sniff.h"

// The output is float32 little-endian and written with plain write(2) of native floats.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "earshot-decode writes native floats as little-endian PCM");

namespace earshot::decode {
namespace {

int Run(int argc, char** argv) {
  Options o = ParseOptions(argc, argv);
  ApplyLimits(o);

  int in_fd = open(o.input.c_str(), O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) Fail(Exit::kIo, Format("cannot open the input: %s", strerror(errno)));
  struct stat st;
  if (fstat(in_fd, &st) != 0 || !S_ISREG(st.st_mode)) Fail(Exit::kIo, "the input is not a regular file");
  int out_fd = o.output_fd;
  if (out_fd >= 0) {
    // A pipe (to the engine, or to the service counting samples): nothing of the audio
    // touches the disk.
    struct stat out_st;
    if (fstat(out_fd, &out_st) != 0) Fail(Exit::kIo, Format("--output-fd %d is not open: %s", out_fd, strerror(errno)));
    if (!S_ISFIFO(out_st.st_mode) && !S_ISSOCK(out_st.st_mode)) Fail(Exit::kIo, Format("--output-fd %d is not a pipe or socket", out_fd));
  } else {
    // O_NOFOLLOW: the spool directory is ours, a symlink planted there is not.
    out_fd = open(o.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out_fd < 0) Fail(Exit::kIo, Format("cannot create the output: %s", strerror(errno)));
  }

  // Why the seccomp filter is not in force; empty when it is.
  const std::string unsandboxed = o.seccomp ? InstallSeccomp() : "the seccomp filter was turned off (--no-seccomp)";
  const bool sandboxed = unsandboxed.empty();
  if (o.selftest) {
    if (!sandboxed) Fail(Exit::kInternal, "seccomp is not available: " + unsandboxed);
    syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    Fail(Exit::kInternal, "the sandbox let socket(2) through");
  }
  // Outside its sandbox a codec bug in a hostile upload runs with everything the service's
  // user may do. Only the operator can accept that, never this process on its own.
  if (!sandboxed && !o.allow_unsandboxed) {
    Fail(Exit::kUnsandboxed, unsandboxed + "; refusing to decode without the sandbox (--allow-unsandboxed decodes anyway)");
  }

  Input in(in_fd, st.st_size);
  if (in.size() == 0) Fail(Exit::kEmpty, "the upload is empty (0 bytes)");

  InputFormat format = o.format;
  Sniff sniff = SniffInput(in);
  if (format == InputFormat::kBasic && sniff.family == Family::kAu) format = InputFormat::kAuto;

  Family family = Family::kUnknown;
  if (format == InputFormat::kAuto) {
    if (sniff.family == Family::kUnknown) {
      if (!sniff.what.empty()) Fail(Exit::kUnsupported, "the data is " + sniff.what + ", not a supported audio format");
      Fail(Exit::kUnsupported, "the data is not in a recognised audio format (WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF or AU)");
    }
    family = sniff.family;
    if (!o.container.empty() && o.container != ExpectedName(family)) {
      Fail(Exit::kUnsupported, Format("the data is %s, not %s as its Content-Type says", ExpectedName(family), o.container.c_str()));
    }
  } else if (sniff.family != Family::kUnknown && (sniff.family != Family::kMpeg || sniff.id3)) {
    // (A bare MPEG frame sync is only two bytes of pattern: raw samples can contain one.)
    // Headerless formats were declared; a container here means the Content-Type is wrong,
    // and decoding its header as samples would only produce noise.
    Fail(Exit::kUnsupported, Format("the data is a %s file, not headerless audio as its Content-Type says", ExpectedName(sniff.family)));
  }

  switch (family) {
    case Family::kWav:
    case Family::kRf64:
    case Family::kAiff:
      if (ChunkedHeaderTruncated(in, family)) {
        Fail(Exit::kCorrupt, Format("the %s header declares more audio data than the file holds: it is truncated", FamilyName(family)));
      }
      break;
    case Family::kAu:
      if (AuTruncated(in)) Fail(Exit::kCorrupt, "the AU header declares more audio data than the file holds: it is truncated");
      break;
    case Family::kOgg:
      if (OggTruncated(in)) Fail(Exit::kCorrupt, "the Ogg stream does not end with a complete end-of-stream page: it is truncated");
      break;
    default:
      break;
  }

  PcmSink sink(out_fd, o.max_seconds);
  Decoded d = family == Family::kMpeg ? DecodeWithMpg123(in, o, sniff.mpeg_start, sink) : DecodeWithSndfile(in, o, family, sink);
  if (sink.samples() == 0) Fail(Exit::kEmpty, "the audio contains no samples");
  if (close(out_fd) != 0) Fail(Exit::kIo, Format("cannot write the output: %s", strerror(errno)));

  PrintLine(Format("{\"ok\":true,\"samples\":%llu,\"durationMs\":%llu,\"inputRate\":%d,\"inputChannels\":%d,"
                   "\"inputFrames\":%llu,\"container\":",
                   static_cast<unsigned long long>(sink.samples()),
                   static_cast<unsigned long long>((sink.samples() * 1000 + kOutputRate / 2) / kOutputRate), d.rate,
                   d.channels, static_cast<unsigned long long>(sink.input_frames())) +
            JsonString(d.container) + ",\"codec\":" + JsonString(d.codec) +
            ",\"seccomp\":" + (sandboxed ? "true" : "false") + "}");
  return 0;
}

// Every failure ends here: one JSON line and the exit code.
int Main(int argc, char** argv) {
  Exit exit;
  std::string message;
  try {
    return Run(argc, argv);
  } catch (const DecodeError& e) {
    exit = e.exit;
    message = e.message;
    // A codec that could not allocate reports "lost sync", "malformed" or a short read; when
    // an allocation failed along the way, the memory limit is the cause to report.
    if (AllocationFailed() && exit != Exit::kTooLong && exit != Exit::kUsage && exit != Exit::kLimit) {
      exit = Exit::kLimit;
      message = "the decoder ran out of memory under its address-space limit (the codec then reported: " + message + ")";
    }
  } catch (const std::bad_alloc&) {
    exit = Exit::kLimit;
    message = "the decoder ran out of memory (its address-space limit)";
  } catch (const std::exception& e) {
    exit = AllocationFailed() ? Exit::kLimit : Exit::kInternal;
    message = std::string("internal error: ") + e.what();
  }
  PrintLine(std::string("{\"ok\":false,\"code\":\"") + CodeFor(exit) + "\",\"message\":" + JsonString(message) + "}");
  return static_cast<int>(exit);
}

}  // namespace
}  // namespace earshot::decode

int main(int argc, char** argv) { return earshot::decode::Main(argc, argv); }
