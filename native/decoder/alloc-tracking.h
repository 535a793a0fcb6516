// Whether an allocation has failed in this process (the memory limit at work).
//
// Under RLIMIT_AS a failed allocation surfaces in a codec library as a generic error ("lost
// sync", "malformed file") or not at all. alloc-tracking.cc interposes the allocator entry
// points (the executable's definitions win over libc's for every library) and forwards to
// glibc's own implementation, so that "the memory limit bit" can be told apart from "the
// file is corrupt".
#ifndef EARSHOT_DECODE_ALLOC_TRACKING_H_
#define EARSHOT_DECODE_ALLOC_TRACKING_H_

namespace earshot::decode {

// True once any malloc/calloc/realloc/memalign/aligned_alloc/posix_memalign call has
// failed. Async-signal-safe.
bool AllocationFailed();

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_ALLOC_TRACKING_H_
