#include "report.h"

#include <unistd.h>

#include <cerrno>

#include "failure.h"

namespace earshot::decode {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += Format("\\u%04x", c);
    } else if (c >= 0x80) {
      out += '?';  // messages are ours and ASCII; never risk emitting invalid UTF-8
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void PrintLine(const std::string& json) {
  std::string line = json + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = write(STDOUT_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nobody is listening any more; the exit code still tells
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace earshot::decode
