// Read access to the upload: positional reads, and a forward-moving window for the walkers
// that step through a file frame by frame.
#ifndef EARSHOT_DECODE_INPUT_H_
#define EARSHOT_DECODE_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace earshot::decode {

// Positional reads of the input; the descriptor's own offset stays at 0 for the codecs.
class Input {
 public:
  Input(int fd, int64_t size) : fd_(fd), size_(size) {}
  int fd() const { return fd_; }
  int64_t size() const { return size_; }

  // Reads up to n bytes at pos; returns how many were read (short only at end of file).
  // Fails with Exit::kIo on a read error.
  size_t ReadAt(int64_t pos, void* buf, size_t n) const;

 private:
  int fd_;
  int64_t size_;
};

// A forward-moving window over the input for the frame walkers, so that walking a long file
// costs one sequential read rather than a system call per frame.
class Window {
 public:
  explicit Window(const Input& in) : in_(in), buf_(1 << 16) {}
  // Returns a pointer to n (<= 4096) bytes at pos, or nullptr if the file ends before.
  const uint8_t* At(int64_t pos, size_t n);

 private:
  const Input& in_;
  std::vector<uint8_t> buf_;
  int64_t base_ = 0;
  size_t len_ = 0;
};

inline uint32_t Be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
inline uint32_t Le32(const uint8_t* p) { return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }
inline uint64_t Le64(const uint8_t* p) { return uint64_t(Le32(p + 4)) << 32 | Le32(p); }

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_INPUT_H_
