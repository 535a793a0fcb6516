#include "alloc-tracking.h"

#include <signal.h>

#include <cerrno>
#include <cstddef>

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

namespace {
volatile sig_atomic_t g_alloc_failed = 0;
inline void* Track(void* p, size_t n) {
  if (p == nullptr && n != 0) g_alloc_failed = 1;
  return p;
}
}  // namespace

namespace earshot::decode {
bool AllocationFailed() { return g_alloc_failed != 0; }
}  // namespace earshot::decode

extern "C" {
void* malloc(size_t n) noexcept { return Track(__libc_malloc(n), n); }
void* calloc(size_t n, size_t size) noexcept { return Track(__libc_calloc(n, size), n * size); }
void* realloc(void* p, size_t n) noexcept { return Track(__libc_realloc(p, n), n); }
void* memalign(size_t align, size_t n) noexcept { return Track(__libc_memalign(align, n), n); }
void* aligned_alloc(size_t align, size_t n) noexcept { return Track(__libc_memalign(align, n), n); }
int posix_memalign(void** out, size_t align, size_t n) noexcept {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  void* p = Track(__libc_memalign(align, n), n);
  if (p == nullptr && n != 0) return ENOMEM;
  *out = p;
  return 0;
}
}
