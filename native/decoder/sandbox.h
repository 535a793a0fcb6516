// The decoder's confinement: resource limits and process attributes first, then a seccomp
// allow-list once both files are open. A hostile upload meets the codec libraries only
// inside both.
#ifndef EARSHOT_DECODE_SANDBOX_H_
#define EARSHOT_DECODE_SANDBOX_H_

#include <string>

#include "options.h"

namespace earshot::decode {

// Limits and process attributes that must hold before any untrusted byte is read: no
// inherited descriptors, no core files, RLIMIT_NOFILE/CPU/FSIZE/AS, no-new-privs, death
// with the parent, and handlers that report a crash after a failed allocation as the
// memory limit. Fails with Exit::kInternal when one cannot be set.
void ApplyLimits(const Options& o);

// Installs the seccomp allow-list (sandbox.cc says what it allows). Returns an empty
// string when the filter is in force, else why the kernel does not offer it (no seccomp,
// as under qemu-user). Fails with Exit::kInternal when the filter cannot be built.
std::string InstallSeccomp();

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_SANDBOX_H_
