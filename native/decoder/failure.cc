#include "failure.h"

#include <cstdarg>
#include <cstdio>
#include <utility>

namespace earshot::decode {

const char* CodeFor(Exit exit) {
  switch (exit) {
    case Exit::kUnsupported: return "ERR_AUDIO_UNSUPPORTED";
    case Exit::kCorrupt: return "ERR_AUDIO_CORRUPT";
    case Exit::kTooLong: return "ERR_AUDIO_TOO_LONG";
    case Exit::kEmpty: return "ERR_AUDIO_EMPTY";
    case Exit::kLimit: return "ERR_AUDIO_LIMIT";
    case Exit::kUnsandboxed: return "ERR_DECODER_UNSANDBOXED";
    default: return "ERR_DECODER";
  }
}

void Fail(Exit exit, std::string message) { throw DecodeError{exit, std::move(message)}; }

std::string Format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

}  // namespace earshot::decode
