#include "sandbox.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

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

}  // namespace

void ApplyLimits(const Options& o) {
  // Inherited descriptors are none of our business; drop them before anything else.
  syscall(SYS_close_range, 3u, ~0u, 0u);

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

#if defined(__x86_64__)
#define EARSHOT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define EARSHOT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
// Elsewhere (32-bit ARM has its own mmap2/_llseek/... family) the filter is left out rather
// than guessed, and the JSON reports "seccomp":false.

#ifdef EARSHOT_AUDIT_ARCH
// Installs an allow-list of the system calls that decoding needs once both files are open:
// reading, seeking, writing, memory management (never executable), signals to ourselves and
// exit. open/openat fail with EACCES and ioctl with ENOTTY, because libraries may probe and
// cope; anything else (exec, sockets, fork, ptrace, ...) kills the process with SIGSYS.
bool InstallSeccomp() {
  std::vector<sock_filter> f;
  auto stmt = [&](uint16_t code, uint32_t k) { f.push_back(BPF_STMT(code, k)); };
  auto jump = [&](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { f.push_back(BPF_JUMP(code, k, jt, jf)); };
  const uint32_t kKill = SECCOMP_RET_KILL_PROCESS;
  const uint32_t kAllow = SECCOMP_RET_ALLOW;
  const uint32_t kNr = offsetof(struct seccomp_data, nr);
  // Low 32 bits of an argument (little-endian).
  auto arg_low = [](int i) { return static_cast<uint32_t>(offsetof(struct seccomp_data, args) + 8 * i); };

  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, EARSHOT_AUDIT_ARCH, 1, 0);
  stmt(BPF_RET | BPF_K, kKill);
  stmt(BPF_LD | BPF_W | BPF_ABS, kNr);
#ifdef __x86_64__
  jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u /* x32 ABI */, 0, 1);
  stmt(BPF_RET | BPF_K, kKill);
#endif

  const int allowed[] = {
      SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_lseek, SYS_close,
#ifdef SYS_fstat
      SYS_fstat,
#endif
#ifdef SYS_newfstatat
      SYS_newfstatat,
#endif
#ifdef SYS_statx
      SYS_statx,
#endif
      SYS_brk, SYS_munmap, SYS_mremap, SYS_madvise, SYS_exit, SYS_exit_group,
      SYS_rt_sigreturn, SYS_rt_sigprocmask, SYS_rt_sigaction, SYS_getpid, SYS_gettid,
      SYS_futex, SYS_clock_gettime, SYS_gettimeofday, SYS_getrandom, SYS_sched_yield,
      SYS_fcntl, SYS_restart_syscall,
      // Read-only facts: glibc's qsort asks sysinfo how much memory there is.
      SYS_sysinfo, SYS_uname, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_clock_getres,
      SYS_getrusage, SYS_times,
  };
  for (int nr : allowed) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, kAllow);
  }

  // mmap and mprotect, but never with PROT_EXEC: no fresh code pages for an exploit.
  for (int nr : {static_cast<int>(SYS_mmap), static_cast<int>(SYS_mprotect)}) {
    // Not this call: skip the four instructions below; the accumulator still holds nr.
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 4);
    stmt(BPF_LD | BPF_W | BPF_ABS, arg_low(2));
    jump(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1);
    stmt(BPF_RET | BPF_K, kKill);
    stmt(BPF_RET | BPF_K, kAllow);
  }

  // prlimit64 to read limits (new_limit == NULL), never to change them.
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_prlimit64, 0, 6);
  stmt(BPF_LD | BPF_W | BPF_ABS, arg_low(2));
  jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3);
  stmt(BPF_LD | BPF_W | BPF_ABS, arg_low(2) + 4);
  jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
  stmt(BPF_RET | BPF_K, kAllow);
  stmt(BPF_RET | BPF_K, kKill);
  stmt(BPF_LD | BPF_W | BPF_ABS, kNr);

  // abort() raises SIGABRT through tgkill: allow signals to ourselves only.
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_tgkill, 0, 4);
  stmt(BPF_LD | BPF_W | BPF_ABS, arg_low(0));
  jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(getpid()), 0, 1);
  stmt(BPF_RET | BPF_K, kAllow);
  stmt(BPF_RET | BPF_K, kKill);

  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES);
#ifdef SYS_open
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_open, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES);
#endif
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOTTY);
  stmt(BPF_RET | BPF_K, kKill);

  struct sock_fprog prog = {static_cast<unsigned short>(f.size()), f.data()};
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0;
}
#else
bool InstallSeccomp() { return false; }
#endif

}  // namespace earshot::decode
