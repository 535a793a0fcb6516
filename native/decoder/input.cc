#include "input.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "failure.h"

namespace earshot::decode {

size_t Input::ReadAt(int64_t pos, void* buf, size_t n) const {
  size_t got = 0;
  while (got < n && pos + static_cast<int64_t>(got) < size_) {
    ssize_t r = pread(fd_, static_cast<char*>(buf) + got, n - got, pos + static_cast<int64_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) Fail(Exit::kIo, Format("cannot read the input: %s", strerror(errno)));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

const uint8_t* Window::At(int64_t pos, size_t n) {
  if (pos < base_ || pos + static_cast<int64_t>(n) > base_ + static_cast<int64_t>(len_)) {
    base_ = pos;
    len_ = in_.ReadAt(pos, buf_.data(), buf_.size());
  }
  if (pos + static_cast<int64_t>(n) > base_ + static_cast<int64_t>(len_)) return nullptr;
  return buf_.data() + (pos - base_);
}

}  // namespace earshot::decode
