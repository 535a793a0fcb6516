#include "sandbox.h"

#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "alloc-tracking.h"
#include "failure.h"
#include "options.h"

namespace earshot::decode {
namespace {

// Some codec libraries (libsoxr among them) do not check for failed allocations and crash
// instead. When an allocation has failed, such a crash is the memory limit at work: report it
// as such. Otherwise the handler (reset by SA_RESETHAND) returns, the fault repeats and the
// process dies of its real signal. Only async-signal-safe calls here.
const char kOutOfMemoryReport[] =
    "{\"ok\":false,\"code\":\"ERR_AUDIO_LIMIT\",\"message\":\"the decoder ran out of memory under its "
    "address-space limit (a codec library crashed on a failed allocation)\"}\n";
alignas(16) char g_signal_stack[64 * 1024];

void OnFatalSignal(int) {
  if (AllocationFailed()) {
    ssize_t ignored = write(STDOUT_FILENO, kOutOfMemoryReport, sizeof kOutOfMemoryReport - 1);
    (void)ignored;
    _exit(static_cast<int>(Exit::kLimit));
  }
}

void InstallFatalSignalHandlers() {
  // Its own stack: under RLIMIT_AS the fault may be a stack that could not grow.
  stack_t stack{};
  stack.ss_sp = g_signal_stack;
  stack.ss_size = sizeof g_signal_stack;
  sigaltstack(&stack, nullptr);
  struct sigaction action {};
  action.sa_handler = OnFatalSignal;
  action.sa_flags = SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT}) sigaction(sig, &action, nullptr);
}

// Lowers a limit; never tries to raise a hard limit the service itself runs under (EPERM).
void SetLimit(int resource, rlim_t soft, rlim_t hard, const char* name) {
  struct rlimit current {};
  if (getrlimit(resource, &current) == 0 && current.rlim_max != RLIM_INFINITY) {
    soft = std::min(soft, current.rlim_max);
    hard = std::min(hard, current.rlim_max);
  }
  struct rlimit rl = {soft, hard};
  if (setrlimit(resource, &rl) != 0) Fail(Exit::kInternal, Format("setrlimit(%s) failed: %s", name, strerror(errno)));
}

// ---- the seccomp allow-list ----------------------------------------------------------
//
// What decoding needs once both files are open: reading, seeking, writing, memory
// management (never executable), signals to ourselves, time, and exit. open/openat fail
// with EACCES and ioctl with ENOTTY, because libraries may probe and cope; anything else
// (exec, sockets, fork, ptrace, ...) kills the process with SIGSYS. So do system calls of
// another ABI than the decoder's own (x32, or 32-bit code on a 64-bit kernel).
//
// The rules name system calls; libseccomp resolves the names for the architecture it runs
// on. A name that architecture does not have is skipped there: the 32-bit variants
// (_llseek, mmap2, fstat64, fcntl64, the *_time64 and *32 calls) exist only on 32-bit ARM
// and x86, open not on arm64.

// Allowed with any arguments. The second group are read-only facts: glibc's qsort asks
// sysinfo how much memory there is.
const char* const kAllowed[] = {
    "read", "write", "readv", "writev", "pread64", "lseek", "_llseek", "close",
    "fstat", "fstat64", "newfstatat", "fstatat64", "statx",
    "brk", "munmap", "mremap", "madvise", "exit", "exit_group",
    "rt_sigreturn", "sigreturn", "rt_sigprocmask", "rt_sigaction", "getpid", "gettid",
    "futex", "futex_time64", "clock_gettime", "clock_gettime64", "gettimeofday", "getrandom",
    "sched_yield", "fcntl", "fcntl64", "restart_syscall",

    "sysinfo", "uname", "getuid", "geteuid", "getgid", "getegid",
    "getuid32", "geteuid32", "getgid32", "getegid32", "clock_getres", "clock_getres_time64",
    "getrusage", "times",
};

// The number of a system call on this architecture, or -1 when it has no such call.
int SyscallNumber(const char* name) {
  const int nr = seccomp_syscall_resolve_name(name);
  // A name libseccomp does not know at all is a typo in the list above.
  if (nr == __NR_SCMP_ERROR) Fail(Exit::kInternal, Format("seccomp: unknown system call name %s", name));
  return nr < 0 ? -1 : nr;  // other negative numbers: libseccomp's "not on this architecture"
}

void AddRule(scmp_filter_ctx ctx, uint32_t action, const char* name, unsigned conditions = 0,
             const scmp_arg_cmp* condition = nullptr) {
  const int nr = SyscallNumber(name);
  if (nr < 0) return;
  const int rc = seccomp_rule_add_array(ctx, action, nr, conditions, condition);
  if (rc != 0) Fail(Exit::kInternal, Format("seccomp: cannot add the rule for %s: %s", name, strerror(-rc)));
}

void SetAttribute(scmp_filter_ctx ctx, scmp_filter_attr attribute, uint32_t value, const char* name) {
  const int rc = seccomp_attr_set(ctx, attribute, value);
  if (rc != 0) Fail(Exit::kInternal, Format("seccomp: cannot set %s: %s", name, strerror(-rc)));
}

}  // namespace

void ApplyLimits(const Options& o) {
  // Inherited descriptors are none of our business, except the output pipe we were given;
  // drop them before anything else.
  if (o.output_fd >= 3) {
    if (o.output_fd > 3) syscall(SYS_close_range, 3u, static_cast<unsigned>(o.output_fd - 1), 0u);
    syscall(SYS_close_range, static_cast<unsigned>(o.output_fd + 1), ~0u, 0u);
  } else {
    syscall(SYS_close_range, 3u, ~0u, 0u);
  }

  SetLimit(RLIMIT_CORE, 0, 0, "RLIMIT_CORE");
  // Room for stdio, the input and the output; nothing else is ever opened.
  SetLimit(RLIMIT_NOFILE, 8, 8, "RLIMIT_NOFILE");
  rlim_t cpu = static_cast<rlim_t>(std::ceil(o.max_cpu_seconds));
  SetLimit(RLIMIT_CPU, cpu, cpu + 1, "RLIMIT_CPU");
  // The output is bounded by max-seconds; a second of slack keeps the explicit length
  // check (with its clear message) the one that normally fires.
  double out_bytes = (o.max_seconds + 1.0) * kOutputRate * sizeof(float) + 65536;
  SetLimit(RLIMIT_FSIZE, static_cast<rlim_t>(out_bytes), static_cast<rlim_t>(out_bytes), "RLIMIT_FSIZE");
  if (o.max_memory_mb > 0) {
    rlim_t bytes = static_cast<rlim_t>(o.max_memory_mb * 1024 * 1024);
    SetLimit(RLIMIT_AS, bytes, bytes, "RLIMIT_AS");
  }

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Fail(Exit::kInternal, "prctl(PR_SET_NO_NEW_PRIVS) failed");
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // If the service dies, its decoders must not outlive it.
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

  // Writes beyond RLIMIT_FSIZE should fail with EFBIG (reported as too long), not kill us.
  signal(SIGXFSZ, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  InstallFatalSignalHandlers();
}

std::string InstallSeccomp() {
  // Level 3: seccomp(2) answers this process and has SECCOMP_RET_KILL_PROCESS (Linux 4.14).
  // Below it there is nothing to load: a kernel without seccomp, qemu-user, or a filter of
  // the parent's that forbids seccomp(2) (systemd's @system-service does: the unit allows it).
  const unsigned api = seccomp_api_get();
  if (api < 3) {
    return Format("seccomp(2) with SECCOMP_RET_KILL_PROCESS is not available to this process (libseccomp API "
                  "level %u, needs 3: no seccomp in the kernel, qemu-user, or a parent's filter forbids it)", api);
  }

  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (ctx == nullptr) Fail(Exit::kInternal, "seccomp: cannot create a filter");
  struct Releaser {
    scmp_filter_ctx ctx;
    ~Releaser() { seccomp_release(ctx); }
  } releaser{ctx};
  SetAttribute(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS, "the action for other ABIs");
  // seccomp_load then returns the kernel's own error number, for the report.
  SetAttribute(ctx, SCMP_FLTATR_API_SYSRAWRC, 1, "raw error numbers");

  for (const char* name : kAllowed) AddRule(ctx, SCMP_ACT_ALLOW, name);

  // mmap and mprotect, but never with PROT_EXEC: no fresh code pages for an exploit.
  const scmp_arg_cmp no_exec[] = {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)};
  for (const char* name : {"mmap", "mmap2", "mprotect"}) AddRule(ctx, SCMP_ACT_ALLOW, name, 1, no_exec);

  // prlimit64 to read limits (new_limit == NULL), never to change them.
  const scmp_arg_cmp read_only[] = {SCMP_A2(SCMP_CMP_EQ, 0)};
  AddRule(ctx, SCMP_ACT_ALLOW, "prlimit64", 1, read_only);

  // abort() raises SIGABRT through tgkill: signals to ourselves only.
  const scmp_arg_cmp ourselves[] = {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(getpid()))};
  AddRule(ctx, SCMP_ACT_ALLOW, "tgkill", 1, ourselves);

  // Libraries may probe for files and terminals and cope when there are none.
  AddRule(ctx, SCMP_ACT_ERRNO(EACCES), "open");
  AddRule(ctx, SCMP_ACT_ERRNO(EACCES), "openat");
  AddRule(ctx, SCMP_ACT_ERRNO(ENOTTY), "ioctl");

  const int rc = seccomp_load(ctx);
  if (rc == -ENOMEM) Fail(Exit::kInternal, "seccomp: out of memory while building the filter");
  if (rc != 0) return Format("the kernel refused the seccomp filter: %s", strerror(-rc));
  return "";
}

}  // namespace earshot::decode
