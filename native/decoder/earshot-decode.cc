// earshot-decode: earshot's out-of-process audio decoder.
//
// It reads one untrusted upload and writes it as 16 kHz mono float32 little-endian PCM, the
// input of the whisper engine, then prints exactly one JSON line on stdout describing the
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
// The CLI and JSON contract are described in kUsage; src/engine/audio-decoder.ts is the one
// caller.

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <mpg123.h>
#include <signal.h>
#include <sndfile.h>
#include <soxr.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

// The output is float32 little-endian and written with plain write(2) of native floats.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "earshot-decode writes native floats as little-endian PCM");

namespace {

const char kUsage[] = R"(usage: earshot-decode --input IN --output OUT --format FORMAT --max-seconds S [options]

Decodes IN and writes OUT as 16 kHz mono float32 little-endian PCM, then prints one JSON line:
  {"ok":true,"samples":N,"durationMs":N,"inputRate":N,"inputChannels":N,"inputFrames":N,
   "container":"wav|rf64|aiff|au|flac|ogg|mp3|raw","codec":"...","seccomp":true|false}
  {"ok":false,"code":"ERR_...","message":"..."}

  --format auto|basic|l16|mulaw|alaw
                      auto: the container is detected from the data (WAV, RF64, AIFF, AU,
                      FLAC, Ogg Vorbis/Opus, MPEG audio); basic: an AU file when the data
                      starts with ".snd", else raw 8 kHz mono mu-law; l16/mulaw/alaw: raw
  --rate N            sample rate of raw input (required for l16, mulaw, alaw)
  --channels M        channels of raw input (default 1)
  --endian little|big|auto
                      byte order of l16 (default auto: detected from the signal)
  --container wav|aiff|au|flac|ogg|mp3
                      with auto: the container the data must be (else ERR_AUDIO_UNSUPPORTED)
  --codec opus|vorbis with --container ogg: the codec the stream must use
  --max-seconds S     fail with ERR_AUDIO_TOO_LONG beyond S seconds of audio
  --max-memory-mb M   address-space limit (default 256; 0 = none)
  --max-cpu-seconds C CPU-time limit; SIGXCPU after C s, SIGKILL after C+1 s
                      (default 10 + S/4)
  --no-seccomp        skip the seccomp filter (debugging only)
  --sandbox-selftest  after sandboxing, attempt socket(2): the process must die of SIGSYS

Exit codes: 0 ok, 1 internal error, 2 usage, 3 I/O error, 10 unsupported format,
11 corrupt audio, 12 too long, 13 no samples, 14 resource limit.
)";

constexpr int kOutputRate = 16000;
constexpr int kMinRate = 1000;      // below this a header is lying, not describing speech
constexpr int kMaxRate = 768000;    // the highest rate real recorders produce
constexpr int kMaxChannels = 16;    // IBM's limit for multichannel uploads
constexpr size_t kBlockFrames = 4096;

// ---- failures ---------------------------------------------------------------------------

enum class Exit : int {
  kOk = 0,
  kInternal = 1,
  kUsage = 2,
  kIo = 3,
  kUnsupported = 10,
  kCorrupt = 11,
  kTooLong = 12,
  kEmpty = 13,
  kLimit = 14,
};

const char* CodeFor(Exit exit) {
  switch (exit) {
    case Exit::kUnsupported: return "ERR_AUDIO_UNSUPPORTED";
    case Exit::kCorrupt: return "ERR_AUDIO_CORRUPT";
    case Exit::kTooLong: return "ERR_AUDIO_TOO_LONG";
    case Exit::kEmpty: return "ERR_AUDIO_EMPTY";
    case Exit::kLimit: return "ERR_AUDIO_LIMIT";
    default: return "ERR_DECODER";
  }
}

// Thrown for every expected failure; main() turns it into the JSON line and exit code.
struct DecodeError {
  Exit exit;
  std::string message;
};

[[noreturn]] void Fail(Exit exit, std::string message) { throw DecodeError{exit, std::move(message)}; }

std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

}  // namespace

// ---- allocation-failure tracking ----------------------------------------------------------
//
// Under RLIMIT_AS a failed allocation surfaces in a codec library as a generic error ("lost
// sync", "malformed file") or not at all. Interposing the allocator entry points (the
// executable's definitions win over libc's for every library) and forwarding to glibc's own
// implementation lets us tell "the memory limit bit" apart from "the file is corrupt".
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

namespace {

// ---- JSON output --------------------------------------------------------------------------

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

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EFBIG) Fail(Exit::kTooLong, "the decoded audio exceeded the output size limit");
    if (n <= 0) Fail(Exit::kIo, Format("cannot write the output: %s", strerror(errno)));
    p += n;
    size -= static_cast<size_t>(n);
  }
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

// ---- options ------------------------------------------------------------------------------

enum class InputFormat { kAuto, kBasic, kL16, kMulaw, kAlaw };
enum class Endian { kAuto, kLittle, kBig };

struct Options {
  std::string input;
  std::string output;
  InputFormat format = InputFormat::kAuto;
  bool format_set = false;
  int rate = 0;
  int channels = 1;
  Endian endian = Endian::kAuto;
  std::string container;  // expected container, empty = any
  std::string codec;      // expected Ogg codec, empty = any
  double max_seconds = 0;
  double max_memory_mb = 256;
  double max_cpu_seconds = 0;  // 0 = default, derived from max_seconds
  bool seccomp = true;
  bool selftest = false;
};

long ParseInt(const char* name, const char* value, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long v = strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < lo || v > hi) {
    Fail(Exit::kUsage, Format("%s expects an integer between %ld and %ld, got \"%s\"", name, lo, hi, value));
  }
  return v;
}

double ParseNumber(const char* name, const char* value, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  double v = strtod(value, &end);
  if (errno != 0 || end == value || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
    Fail(Exit::kUsage, Format("%s expects a number between %g and %g, got \"%s\"", name, lo, hi, value));
  }
  return v;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  bool max_seconds_set = false;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--help") {
      fputs(kUsage, stderr);
      Fail(Exit::kUsage, "usage requested");
    }
    if (arg == "--no-seccomp") {
      o.seccomp = false;
      continue;
    }
    if (arg == "--sandbox-selftest") {
      o.selftest = true;
      continue;
    }
    if (i + 1 >= argc) Fail(Exit::kUsage, Format("%s: missing value or unknown option (try --help)", arg.c_str()));
    const char* value = argv[++i];
    std::string v = value;
    if (arg == "--input") {
      o.input = v;
    } else if (arg == "--output") {
      o.output = v;
    } else if (arg == "--format") {
      o.format_set = true;
      if (v == "auto") o.format = InputFormat::kAuto;
      else if (v == "basic") o.format = InputFormat::kBasic;
      else if (v == "l16") o.format = InputFormat::kL16;
      else if (v == "mulaw") o.format = InputFormat::kMulaw;
      else if (v == "alaw") o.format = InputFormat::kAlaw;
      else Fail(Exit::kUsage, "--format expects auto, basic, l16, mulaw or alaw, got \"" + v + "\"");
    } else if (arg == "--rate") {
      o.rate = static_cast<int>(ParseInt("--rate", value, kMinRate, kMaxRate));
    } else if (arg == "--channels") {
      o.channels = static_cast<int>(ParseInt("--channels", value, 1, kMaxChannels));
    } else if (arg == "--endian") {
      if (v == "auto") o.endian = Endian::kAuto;
      else if (v == "little") o.endian = Endian::kLittle;
      else if (v == "big") o.endian = Endian::kBig;
      else Fail(Exit::kUsage, "--endian expects little, big or auto, got \"" + v + "\"");
    } else if (arg == "--container") {
      if (v != "wav" && v != "aiff" && v != "au" && v != "flac" && v != "ogg" && v != "mp3") {
        Fail(Exit::kUsage, "--container expects wav, aiff, au, flac, ogg or mp3, got \"" + v + "\"");
      }
      o.container = v;
    } else if (arg == "--codec") {
      if (v != "opus" && v != "vorbis") Fail(Exit::kUsage, "--codec expects opus or vorbis, got \"" + v + "\"");
      o.codec = v;
    } else if (arg == "--max-seconds") {
      o.max_seconds = ParseNumber("--max-seconds", value, 0.001, 7 * 24 * 3600.0);
      max_seconds_set = true;
    } else if (arg == "--max-memory-mb") {
      o.max_memory_mb = ParseNumber("--max-memory-mb", value, 0, 1 << 20);
    } else if (arg == "--max-cpu-seconds") {
      o.max_cpu_seconds = ParseNumber("--max-cpu-seconds", value, 1, 7 * 24 * 3600.0);
    } else {
      Fail(Exit::kUsage, "unknown option " + arg + " (try --help)");
    }
  }
  if (o.input.empty() || o.output.empty()) Fail(Exit::kUsage, "--input and --output are required");
  if (!o.format_set) Fail(Exit::kUsage, "--format is required");
  if (!max_seconds_set) Fail(Exit::kUsage, "--max-seconds is required");
  bool raw = o.format == InputFormat::kL16 || o.format == InputFormat::kMulaw || o.format == InputFormat::kAlaw;
  if (raw && o.rate == 0) Fail(Exit::kUsage, "--rate is required for raw formats");
  if (!raw && o.rate != 0) Fail(Exit::kUsage, "--rate only applies to raw formats");
  if (!o.codec.empty() && o.container != "ogg") Fail(Exit::kUsage, "--codec requires --container ogg");
  if (!o.container.empty() && o.format != InputFormat::kAuto) Fail(Exit::kUsage, "--container requires --format auto");
  if (o.max_cpu_seconds == 0) o.max_cpu_seconds = std::ceil(10 + o.max_seconds / 4);
  return o;
}

// ---- sandbox ------------------------------------------------------------------------------

// Some codec libraries (libsoxr among them) do not check for failed allocations and crash
// instead. When an allocation has failed, such a crash is the memory limit at work: report it
// as such. Otherwise the handler (reset by SA_RESETHAND) returns, the fault repeats and the
// process dies of its real signal. Only async-signal-safe calls here.
const char kOutOfMemoryReport[] =
    "{\"ok\":false,\"code\":\"ERR_AUDIO_LIMIT\",\"message\":\"the decoder ran out of memory under its "
    "address-space limit (a codec library crashed on a failed allocation)\"}\n";
alignas(16) char g_signal_stack[64 * 1024];

void OnFatalSignal(int) {
  if (g_alloc_failed) {
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

// Limits and process attributes that must hold before any untrusted byte is read.
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

// ---- input access -------------------------------------------------------------------------

// Positional reads of the input; the descriptor's own offset stays at 0 for the codecs.
class Input {
 public:
  Input(int fd, int64_t size) : fd_(fd), size_(size) {}
  int fd() const { return fd_; }
  int64_t size() const { return size_; }

  // Reads up to n bytes at pos; returns how many were read (short only at end of file).
  size_t ReadAt(int64_t pos, void* buf, size_t n) const {
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
  const uint8_t* At(int64_t pos, size_t n) {
    if (pos < base_ || pos + static_cast<int64_t>(n) > base_ + static_cast<int64_t>(len_)) {
      base_ = pos;
      len_ = in_.ReadAt(pos, buf_.data(), buf_.size());
    }
    if (pos + static_cast<int64_t>(n) > base_ + static_cast<int64_t>(len_)) return nullptr;
    return buf_.data() + (pos - base_);
  }

 private:
  const Input& in_;
  std::vector<uint8_t> buf_;
  int64_t base_ = 0;
  size_t len_ = 0;
};

uint32_t Be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
uint32_t Le32(const uint8_t* p) { return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }
uint64_t Le64(const uint8_t* p) { return uint64_t(Le32(p + 4)) << 32 | Le32(p); }

// ---- container detection -----------------------------------------------------------------

enum class Family { kUnknown, kWav, kRf64, kAiff, kAu, kFlac, kOgg, kMpeg };

const char* FamilyName(Family f) {
  switch (f) {
    case Family::kWav: return "wav";
    case Family::kRf64: return "rf64";
    case Family::kAiff: return "aiff";
    case Family::kAu: return "au";
    case Family::kFlac: return "flac";
    case Family::kOgg: return "ogg";
    case Family::kMpeg: return "mp3";
    default: return "unknown";
  }
}

// The Content-Type's container name for a family (RF64 is a WAV variant).
const char* ExpectedName(Family f) { return f == Family::kRf64 ? "wav" : FamilyName(f); }

struct MpegFrame {
  int version;      // 1, 2, or 25 (MPEG 2.5)
  int layer;        // 1..3
  int rate;
  int channels;
  int length;       // bytes, 0 for free-format streams
  int samples;      // per frame
};

// Decodes a 4-byte MPEG audio frame header; false if it is not one.
bool ParseMpegHeader(const uint8_t* p, MpegFrame* f) {
  uint32_t h = Be32(p);
  if ((h & 0xFFE00000u) != 0xFFE00000u) return false;
  int ver_bits = (h >> 19) & 3, layer_bits = (h >> 17) & 3, br = (h >> 12) & 15, sr = (h >> 10) & 3;
  int pad = (h >> 9) & 1, mode = (h >> 6) & 3;
  if (ver_bits == 1 || layer_bits == 0 || br == 15 || sr == 3) return false;
  static const int kBitrates[2][3][15] = {
      {{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
       {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
       {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}},
      {{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
       {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
       {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}}};
  static const int kRates[3] = {44100, 48000, 32000};
  f->version = ver_bits == 3 ? 1 : ver_bits == 2 ? 2 : 25;
  f->layer = 4 - layer_bits;
  f->rate = kRates[sr] / (f->version == 1 ? 1 : f->version == 2 ? 2 : 4);
  f->channels = mode == 3 ? 1 : 2;
  int kbps = kBitrates[f->version == 1 ? 0 : 1][f->layer - 1][br];
  if (f->layer == 1) {
    f->samples = 384;
    f->length = kbps ? (12 * kbps * 1000 / f->rate + pad) * 4 : 0;
  } else {
    f->samples = (f->layer == 3 && f->version != 1) ? 576 : 1152;
    f->length = kbps ? f->samples / 8 * kbps * 1000 / f->rate + pad : 0;
  }
  return true;
}

// Where MPEG audio starts: after any ID3v2 tags; -1 if the data is not an MPEG stream.
int64_t MpegStart(const Input& in) {
  int64_t pos = 0;
  uint8_t b[10];
  bool tagged = false;
  for (int i = 0; i < 8 && in.ReadAt(pos, b, 10) == 10 && memcmp(b, "ID3", 3) == 0; i++) {
    int64_t size = (b[6] & 0x7F) << 21 | (b[7] & 0x7F) << 14 | (b[8] & 0x7F) << 7 | (b[9] & 0x7F);
    pos += 10 + size + ((b[5] & 0x10) ? 10 : 0);
    tagged = true;
  }
  // Two consecutive frame headers, so that four random bytes do not pass for MP3.
  uint8_t h[4];
  MpegFrame a, c;
  if (in.ReadAt(pos, h, 4) == 4 && ParseMpegHeader(h, &a) && a.length > 0) {
    if (pos + a.length >= in.size()) return pos;
    if (in.ReadAt(pos + a.length, h, 4) == 4 && ParseMpegHeader(h, &c) && c.layer == a.layer && c.rate == a.rate) {
      return pos;
    }
  }
  return tagged ? -2 : -1;  // -2: an ID3 tag with no MPEG audio behind it
}

struct Sniff {
  Family family = Family::kUnknown;
  bool id3 = false;  // starts with an ID3v2 tag
  std::string what;  // for unknown data: what it looks like, for the message
  int64_t mpeg_start = 0;
};

Sniff SniffInput(const Input& in) {
  Sniff s;
  uint8_t b[512] = {};
  size_t n = in.ReadAt(0, b, sizeof b);
  auto is = [&](size_t off, const char* magic) {
    size_t len = strlen(magic);
    return n >= off + len && memcmp(b + off, magic, len) == 0;
  };
  if ((is(0, "RIFF") || is(0, "RIFX")) && is(8, "WAVE")) s.family = Family::kWav;
  else if (is(0, "RF64") && is(8, "WAVE")) s.family = Family::kRf64;
  else if (is(0, "FORM") && (is(8, "AIFF") || is(8, "AIFC"))) s.family = Family::kAiff;
  else if (is(0, ".snd") || is(0, "dns.")) s.family = Family::kAu;
  else if (is(0, "fLaC")) s.family = Family::kFlac;
  else if (is(0, "OggS")) s.family = Family::kOgg;
  if (s.family != Family::kUnknown) return s;

  s.id3 = is(0, "ID3");
  int64_t mpeg = MpegStart(in);
  if (mpeg >= 0) {
    s.family = Family::kMpeg;
    s.mpeg_start = mpeg;
    return s;
  }
  if (mpeg == -2) {
    s.what = "an ID3 tag without MPEG audio frames behind it";
    return s;
  }

  // Not something we decode: name the usual suspects so the client knows what to change.
  if (is(0, "\x1A\x45\xDF\xA3")) s.what = "WebM/Matroska";
  else if (is(4, "ftyp")) s.what = "MP4/M4A (AAC)";
  else if (is(0, "#!AMR")) s.what = "AMR";
  else if (is(0, "caff")) s.what = "CAF";
  else if (is(0, "riff")) s.what = "Wave64";
  else if (n >= 2 && b[0] == 0xFF && (b[1] & 0xF6) == 0xF0) s.what = "AAC (ADTS)";
  else if (is(0, "RIFF")) s.what = "a RIFF file that is not WAVE";
  else {
    bool text = n > 0;
    for (size_t i = 0; i < n && text; i++) {
      uint8_t c = b[i];
      if (c < 0x09 || (c > 0x0D && c < 0x20) || c == 0x7F) text = false;
    }
    if (text) s.what = "text";
  }
  return s;
}

// ---- integrity checks that the codec libraries do not make -------------------------------
//
// libsndfile quietly shortens a WAV, AIFF or AU whose header declares more data than the
// file holds, libmpg123 quietly drops a cut-off last frame, and an Ogg stream cut at a page
// boundary decodes cleanly. A truncated upload must fail, not become a shorter transcript.

// True when a chunk-based header declares a data chunk that runs past the end of the file.
// Streaming writers that cannot seek back leave 0xFFFFFFFF or another huge placeholder as
// the size: those mean "unknown" and are not held against the file. So is anything the walk
// cannot follow (a chunk id that is not ASCII, as after an unpadded odd-sized chunk):
// libsndfile has the last word on such files.
bool ChunkedHeaderTruncated(const Input& in, Family family) {
  Window w(in);
  const bool aiff = family == Family::kAiff;
  const uint8_t* head = w.At(0, 12);
  if (head == nullptr) return true;
  const bool big = aiff || memcmp(head, "RIFX", 4) == 0;
  uint64_t rf64_data = 0;
  int64_t pos = 12;
  for (int chunks = 0; chunks < 256; chunks++) {
    const uint8_t* c = w.At(pos, 8);
    if (c == nullptr) return pos < in.size();  // a partial chunk header: cut off
    for (int i = 0; i < 4; i++) {
      if (c[i] < 0x20 || c[i] > 0x7E) return false;
    }
    uint64_t size = big ? Be32(c + 4) : Le32(c + 4);
    const char* data_id = aiff ? "SSND" : "data";
    if (family == Family::kRf64 && memcmp(c, "ds64", 4) == 0) {
      const uint8_t* ds = w.At(pos + 8, 16);
      if (ds == nullptr) return true;
      rf64_data = Le64(ds + 8);
    }
    if (memcmp(c, data_id, 4) == 0) {
      if (size == 0xFFFFFFFFu && family == Family::kRf64) size = rf64_data;
      else if (size >= 0x7FFF0000u) return false;
      return pos + 8 + static_cast<int64_t>(size) > in.size();
    }
    pos += 8 + static_cast<int64_t>(size) + (size & 1);
    if (pos > in.size()) return true;  // a chunk before the audio is itself cut off
  }
  return false;  // no data chunk within reach: libsndfile will say what is wrong
}

bool AuTruncated(const Input& in) {
  uint8_t h[12];
  if (in.ReadAt(0, h, 12) < 12) return true;
  bool le = memcmp(h, "dns.", 4) == 0;
  uint32_t offset = le ? Le32(h + 4) : Be32(h + 4);
  uint32_t size = le ? Le32(h + 8) : Be32(h + 8);
  if (size == 0xFFFFFFFFu) return false;
  return static_cast<int64_t>(offset) + static_cast<int64_t>(size) > in.size();
}

uint32_t OggCrc(const uint8_t* p, size_t n) {
  static uint32_t table[256];
  if (table[1] == 0) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t r = i << 24;
      for (int k = 0; k < 8; k++) r = (r & 0x80000000u) ? (r << 1) ^ 0x04C11DB7u : r << 1;
      table[i] = r;
    }
  }
  uint32_t crc = 0;
  for (size_t i = 0; i < n; i++) crc = (crc << 8) ^ table[((crc >> 24) ^ p[i]) & 0xFF];
  return crc;
}

// True unless the file ends with a complete, CRC-valid Ogg page that carries end-of-stream.
bool OggTruncated(const Input& in) {
  const size_t kMaxPage = 27 + 255 + 255 * 255;
  int64_t start = std::max<int64_t>(0, in.size() - static_cast<int64_t>(kMaxPage));
  std::vector<uint8_t> tail(static_cast<size_t>(in.size() - start));
  size_t n = in.ReadAt(start, tail.data(), tail.size());
  for (size_t p = 0; p + 27 <= n; p++) {
    if (memcmp(&tail[p], "OggS", 4) != 0 || tail[p + 4] != 0) continue;
    size_t segs = tail[p + 26];
    if (p + 27 + segs > n) continue;
    size_t len = 27 + segs;
    for (size_t i = 0; i < segs; i++) len += tail[p + 27 + i];
    if (p + len != n) continue;
    std::vector<uint8_t> page(tail.begin() + static_cast<long>(p), tail.begin() + static_cast<long>(p + len));
    uint32_t stored = Le32(&page[22]);
    memset(&page[22], 0, 4);
    if (OggCrc(page.data(), page.size()) != stored) continue;
    return (page[5] & 0x04) == 0;
  }
  return true;
}

struct MpegScan {
  MpegFrame first{};
  uint64_t frames = 0;       // audio frames walked (a Xing/Info frame is not audio)
  uint64_t samples = 0;      // their samples, before gapless trimming
  bool truncated = false;    // the last frame runs past the end of the file
  bool complete = false;     // the walk reached the end of the file or a trailer
  uint64_t tag_frames = 0;   // the frame count a Xing/Info/VBRI tag states, 0 if none
};

// Walks the MPEG frames from the first to the last. A frame whose declared length runs past
// the end of the file means the upload was cut off; fewer frames than the Xing/Info/VBRI tag
// of the first frame states means it was cut at a frame boundary. Junk in the middle ends
// the walk without a verdict (libmpg123 resynchronises over it); ID3v1 and APE trailers end
// it cleanly.
MpegScan ScanMpeg(const Input& in, int64_t start) {
  MpegScan s;
  Window w(in);
  int64_t pos = start;
  const uint8_t* p = w.At(pos, 4);
  if (p == nullptr || !ParseMpegHeader(p, &s.first)) return s;
  // The Xing/Info tag sits after the side information of the first frame, VBRI at 36: both
  // within its first 200 bytes. Xing/Info count the frames after theirs; VBRI's count is
  // read as including its own frame, the lenient reading.
  bool tag_frame_is_audio = true;
  size_t probe = std::min<size_t>(s.first.length > 4 ? static_cast<size_t>(s.first.length) : 4, 200);
  if (const uint8_t* f = w.At(pos, probe)) {
    for (size_t i = 4; i + 18 <= probe; i++) {
      if (memcmp(f + i, "Xing", 4) == 0 || memcmp(f + i, "Info", 4) == 0) {
        tag_frame_is_audio = false;
        if (Be32(f + i + 4) & 1) s.tag_frames = Be32(f + i + 8);
        break;
      }
      if (memcmp(f + i, "VBRI", 4) == 0) {
        s.tag_frames = Be32(f + i + 14);
        break;
      }
    }
  }
  while (pos < in.size()) {
    MpegFrame f;
    p = w.At(pos, 4);
    if (p == nullptr) return s;  // a few stray trailing bytes: no verdict
    if (!ParseMpegHeader(p, &f) || f.layer != s.first.layer || f.rate != s.first.rate) {
      const uint8_t* t = w.At(pos, 8);
      s.complete = t != nullptr && (memcmp(t, "TAG", 3) == 0 || memcmp(t, "APETAGEX", 8) == 0 || memcmp(t, "LYRICS", 6) == 0);
      return s;
    }
    if (f.length == 0) return s;  // free format: lengths are not in the header
    if (pos + f.length > in.size()) {
      s.truncated = true;
      return s;
    }
    if (pos != start || tag_frame_is_audio) {
      s.frames++;
      s.samples += static_cast<uint64_t>(f.samples);
    }
    pos += f.length;
  }
  s.complete = true;
  return s;
}

// ---- output: downmix → resample → sanitize → write ----------------------------------------

class PcmSink {
 public:
  PcmSink(int fd, double max_seconds) : fd_(fd), max_seconds_(max_seconds) {}
  ~PcmSink() {
    if (soxr_ != nullptr) soxr_delete(soxr_);
  }

  void Start(int input_rate) {
    // The limit is judged on the input, where a length is exact; the output may differ by a
    // sample of resampler rounding.
    max_input_frames_ = static_cast<uint64_t>(std::floor(max_seconds_ * input_rate + 1e-6));
    if (input_rate == kOutputRate) return;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    // One thread: soxr would otherwise use OpenMP worker threads, which the sandbox forbids.
    soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
    soxr_error_t err = nullptr;
    soxr_ = soxr_create(input_rate, kOutputRate, 1, &err, &io, &quality, &runtime);
    if (err != nullptr || soxr_ == nullptr) {
      Fail(Exit::kInternal, Format("cannot create the resampler: %s", err ? err : "unknown error"));
    }
    resampled_.resize(kBlockFrames * 2 + 64);
  }

  // Takes interleaved frames at the input rate.
  void Push(const float* frames, size_t count, int channels) {
    mono_.resize(count);
    if (channels == 1) {
      std::copy(frames, frames + count, mono_.begin());
    } else {
      const float scale = 1.0f / static_cast<float>(channels);
      for (size_t i = 0; i < count; i++) {
        float sum = 0;
        for (int c = 0; c < channels; c++) sum += frames[i * static_cast<size_t>(channels) + static_cast<size_t>(c)];
        mono_[i] = sum * scale;
      }
    }
    input_frames_ += count;
    if (input_frames_ > max_input_frames_) {
      Fail(Exit::kTooLong, Format("the audio is longer than the limit of %.3f s", max_seconds_));
    }
    if (soxr_ == nullptr) {
      Emit(mono_.data(), count);
      return;
    }
    size_t offset = 0;
    while (offset < count) {
      size_t used = 0, produced = 0;
      soxr_error_t err = soxr_process(soxr_, mono_.data() + offset, count - offset, &used, resampled_.data(),
                                      resampled_.size(), &produced);
      if (err != nullptr) Fail(Exit::kInternal, Format("resampler failed: %s", err));
      offset += used;
      Emit(resampled_.data(), produced);
      if (used == 0 && produced == 0) Fail(Exit::kInternal, "resampler made no progress");
    }
  }

  void Finish() {
    if (soxr_ != nullptr) {
      for (;;) {
        size_t produced = 0;
        soxr_error_t err = soxr_process(soxr_, nullptr, 0, nullptr, resampled_.data(), resampled_.size(), &produced);
        if (err != nullptr) Fail(Exit::kInternal, Format("resampler failed: %s", err));
        if (produced == 0) break;
        Emit(resampled_.data(), produced);
      }
    }
    Flush();
  }

  uint64_t samples() const { return samples_; }
  uint64_t input_frames() const { return input_frames_; }

 private:
  void Emit(float* p, size_t n) {
    for (size_t i = 0; i < n; i++) {
      // Float sources may carry NaN/Inf or wild values; the mel spectrogram must not.
      float v = p[i];
      if (!std::isfinite(v)) v = 0;
      out_.push_back(std::clamp(v, -1.0f, 1.0f));
    }
    samples_ += n;
    if (out_.size() >= kBlockFrames * 4) Flush();
  }

  void Flush() {
    if (!out_.empty()) WriteAll(fd_, out_.data(), out_.size() * sizeof(float));
    out_.clear();
  }

  int fd_;
  double max_seconds_;
  uint64_t max_input_frames_ = 0;
  soxr_t soxr_ = nullptr;
  std::vector<float> mono_, resampled_, out_;
  uint64_t samples_ = 0;
  uint64_t input_frames_ = 0;
};

struct Decoded {
  int rate = 0;
  int channels = 0;
  std::string container;
  std::string codec;
};

void CheckRateAndChannels(int rate, int channels) {
  if (channels <= 0 || channels > 1024) Fail(Exit::kCorrupt, Format("the header declares an impossible channel count (%d)", channels));
  if (channels > kMaxChannels) Fail(Exit::kUnsupported, Format("the audio has %d channels; at most %d are supported", channels, kMaxChannels));
  if (rate < kMinRate || rate > kMaxRate) {
    Fail(Exit::kCorrupt, Format("the header declares an implausible sample rate (%d Hz; expected %d to %d)", rate, kMinRate, kMaxRate));
  }
}

void CheckDeclaredLength(double seconds, double max_seconds) {
  if (seconds > max_seconds) {
    Fail(Exit::kTooLong, Format("the audio is %.3f s long, more than the limit of %.3f s", seconds, max_seconds));
  }
}

// ---- libsndfile path ----------------------------------------------------------------------

const char* CodecName(int format) {
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8: return "pcm_s8";
    case SF_FORMAT_PCM_U8: return "pcm_u8";
    case SF_FORMAT_PCM_16: return "pcm_s16";
    case SF_FORMAT_PCM_24: return "pcm_s24";
    case SF_FORMAT_PCM_32: return "pcm_s32";
    case SF_FORMAT_FLOAT: return "float32";
    case SF_FORMAT_DOUBLE: return "float64";
    case SF_FORMAT_ULAW: return "mulaw";
    case SF_FORMAT_ALAW: return "alaw";
    case SF_FORMAT_IMA_ADPCM: return "ima_adpcm";
    case SF_FORMAT_MS_ADPCM: return "ms_adpcm";
    case SF_FORMAT_GSM610: return "gsm610";
    case SF_FORMAT_G721_32: return "g721";
    case SF_FORMAT_G723_24:
    case SF_FORMAT_G723_40: return "g723";
    case SF_FORMAT_VORBIS: return "vorbis";
    case SF_FORMAT_OPUS: return "opus";
    default: return "other";
  }
}

bool MajorMatches(Family family, int format) {
  int major = format & SF_FORMAT_TYPEMASK;
  switch (family) {
    case Family::kWav: return major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX;
    case Family::kRf64: return major == SF_FORMAT_RF64;
    case Family::kAiff: return major == SF_FORMAT_AIFF;
    case Family::kAu: return major == SF_FORMAT_AU;
    case Family::kFlac: return major == SF_FORMAT_FLAC;
    case Family::kOgg: return major == SF_FORMAT_OGG;
    default: return false;
  }
}

// Why libsndfile refused a file whose container we recognised.
[[noreturn]] void FailOpen(int error, const char* text) {
  std::string lower = text;
  for (char& ch : lower) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
  bool unsupported = error == SF_ERR_UNRECOGNISED_FORMAT || error == SF_ERR_UNSUPPORTED_ENCODING ||
                     lower.find("unimplemented") != std::string::npos || lower.find("not supported") != std::string::npos ||
                     lower.find("unsupported") != std::string::npos || lower.find("not yet") != std::string::npos;
  if (unsupported) Fail(Exit::kUnsupported, std::string("the audio uses an encoding that cannot be decoded: ") + text);
  if (error == SF_ERR_SYSTEM) Fail(Exit::kIo, std::string("cannot read the input: ") + text);
  Fail(Exit::kCorrupt, std::string("the audio is malformed: ") + text);
}

// Byte order of headerless 16-bit PCM, guessed the way a listener would: real audio is
// smooth, so consecutive samples differ far less in the right interpretation than in the
// byte-swapped one, where the low byte turns into loud noise.
Endian DetectL16Endian(const Input& in, int channels) {
  std::vector<uint8_t> b(65536);
  size_t n = in.ReadAt(0, b.data(), b.size()) & ~size_t{1};
  size_t samples = n / 2, stride = static_cast<size_t>(channels);
  uint64_t le = 0, be = 0;
  for (size_t i = stride; i < samples; i++) {
    auto sample = [&](size_t k, bool little) {
      uint16_t u = little ? uint16_t(b[2 * k] | b[2 * k + 1] << 8) : uint16_t(b[2 * k] << 8 | b[2 * k + 1]);
      return static_cast<int64_t>(static_cast<int16_t>(u));
    };
    le += static_cast<uint64_t>(std::llabs(sample(i, true) - sample(i - stride, true)));
    be += static_cast<uint64_t>(std::llabs(sample(i, false) - sample(i - stride, false)));
  }
  return be < le ? Endian::kBig : Endian::kLittle;  // ties (silence): little, the common case
}

Decoded DecodeWithSndfile(const Input& in, const Options& o, Family family, PcmSink& sink) {
  SF_INFO info{};
  Decoded d;
  const bool raw = family == Family::kUnknown;
  if (raw) {
    int subtype = o.format == InputFormat::kL16 ? SF_FORMAT_PCM_16 : o.format == InputFormat::kAlaw ? SF_FORMAT_ALAW : SF_FORMAT_ULAW;
    int rate = o.format == InputFormat::kBasic ? 8000 : o.rate;
    int channels = o.format == InputFormat::kBasic ? 1 : o.channels;
    int endian = 0;
    if (o.format == InputFormat::kL16) {
      Endian e = o.endian == Endian::kAuto ? DetectL16Endian(in, channels) : o.endian;
      endian = e == Endian::kBig ? SF_ENDIAN_BIG : SF_ENDIAN_LITTLE;
      d.codec = e == Endian::kBig ? "pcm_s16be" : "pcm_s16le";
    } else {
      d.codec = subtype == SF_FORMAT_ALAW ? "alaw" : "mulaw";
    }
    int frame_bytes = (subtype == SF_FORMAT_PCM_16 ? 2 : 1) * channels;
    if (in.size() % frame_bytes != 0) {
      Fail(Exit::kCorrupt, Format("the raw audio is %lld bytes, not a whole number of %d-byte frames: it is truncated or "
                                  "its channels parameter is wrong", static_cast<long long>(in.size()), frame_bytes));
    }
    info.format = SF_FORMAT_RAW | subtype | endian;
    info.samplerate = rate;
    info.channels = channels;
    d.container = "raw";
  }

  SNDFILE* snd = sf_open_fd(in.fd(), SFM_READ, &info, SF_FALSE);
  if (snd == nullptr) FailOpen(sf_error(nullptr), sf_strerror(nullptr));
  struct Closer {
    SNDFILE* s;
    ~Closer() { sf_close(s); }
  } closer{snd};

  if (!raw) {
    if (!MajorMatches(family, info.format)) {
      Fail(Exit::kCorrupt, Format("the data starts like %s but does not parse as one", FamilyName(family)));
    }
    d.container = FamilyName(family);
    d.codec = (info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_FLAC ? "flac" : CodecName(info.format);
    if (!o.codec.empty() && d.codec != o.codec) {
      Fail(Exit::kUnsupported, Format("the Ogg stream is %s, not %s as its Content-Type says", d.codec.c_str(), o.codec.c_str()));
    }
  }
  CheckRateAndChannels(info.samplerate, info.channels);
  d.rate = info.samplerate;
  d.channels = info.channels;

  // Every container here states its length exactly when it states it at all (Ogg through
  // its last granule position, FLAC in STREAMINFO, the rest through data sizes).
  const bool length_known = info.frames > 0 && info.frames != SF_COUNT_MAX;
  if (length_known) CheckDeclaredLength(static_cast<double>(info.frames) / info.samplerate, o.max_seconds);

  sink.Start(info.samplerate);
  std::vector<float> block(kBlockFrames * static_cast<size_t>(info.channels));
  for (;;) {
    sf_count_t n = sf_readf_float(snd, block.data(), kBlockFrames);
    if (sf_error(snd) != SF_ERR_NO_ERROR) {
      Fail(Exit::kCorrupt, Format("the audio cannot be decoded after %.3f s: %s",
                                          static_cast<double>(sink.input_frames()) / info.samplerate, sf_strerror(snd)));
    }
    if (n <= 0) break;
    sink.Push(block.data(), static_cast<size_t>(n), info.channels);
  }
  if (length_known && static_cast<sf_count_t>(sink.input_frames()) < info.frames) {
    Fail(Exit::kCorrupt, Format("the audio ends after %.3f s although its header declares %.3f s: it is truncated",
                                static_cast<double>(sink.input_frames()) / info.samplerate,
                                static_cast<double>(info.frames) / info.samplerate));
  }
  sink.Finish();
  return d;
}

// ---- libmpg123 path -----------------------------------------------------------------------

Decoded DecodeWithMpg123(const Input& in, const Options& o, int64_t start, PcmSink& sink) {
  MpegScan scan = ScanMpeg(in, start);
  if (scan.truncated) Fail(Exit::kCorrupt, "the MPEG audio stream is cut off in the middle of a frame: it is truncated");
  if (scan.complete && scan.frames < scan.tag_frames) {
    Fail(Exit::kCorrupt, Format("the MPEG stream has %llu of the %llu frames its Xing/Info/VBRI header declares: it is truncated",
                                static_cast<unsigned long long>(scan.frames), static_cast<unsigned long long>(scan.tag_frames)));
  }
  CheckRateAndChannels(scan.first.rate, scan.first.channels);
  CheckDeclaredLength(static_cast<double>(scan.samples) / scan.first.rate, o.max_seconds);

  int err = MPG123_OK;
  mpg123_handle* mh = mpg123_new(nullptr, &err);
  if (mh == nullptr) Fail(Exit::kInternal, Format("cannot create the MPEG decoder: %s", mpg123_plain_strerror(err)));
  struct Closer {
    mpg123_handle* h;
    ~Closer() { mpg123_delete(h); }
  } closer{mh};
  // Quiet: stdout carries our JSON; gapless: the encoder's padding is not audio.
  mpg123_param(mh, MPG123_FLAGS, MPG123_GAPLESS | MPG123_QUIET, 0);
  mpg123_format_none(mh);
  const long* rates = nullptr;
  size_t rate_count = 0;
  mpg123_rates(&rates, &rate_count);
  for (size_t i = 0; i < rate_count; i++) mpg123_format(mh, rates[i], MPG123_MONO | MPG123_STEREO, MPG123_ENC_FLOAT_32);
  if (mpg123_open_fd(mh, in.fd()) != MPG123_OK) Fail(Exit::kCorrupt, Format("cannot open the MPEG stream: %s", mpg123_strerror(mh)));

  Decoded d;
  d.container = "mp3";
  d.codec = scan.first.layer == 3 ? "mp3" : scan.first.layer == 2 ? "mp2" : "mp1";
  std::vector<float> block(kBlockFrames * 2);
  bool started = false;
  for (;;) {
    size_t bytes = 0;
    int r = mpg123_read(mh, block.data(), block.size() * sizeof(float), &bytes);
    if (r == MPG123_NEW_FORMAT) {
      long rate = 0;
      int channels = 0, encoding = 0;
      mpg123_getformat(mh, &rate, &channels, &encoding);
      if (started && (rate != d.rate || channels != d.channels)) {
        Fail(Exit::kCorrupt, "the MPEG stream changes its sample rate or channel count midway");
      }
      if (!started) {
        CheckRateAndChannels(static_cast<int>(rate), channels);
        d.rate = static_cast<int>(rate);
        d.channels = channels;
        sink.Start(d.rate);
        started = true;
      }
      continue;
    }
    if (r != MPG123_OK && r != MPG123_DONE) {
      Fail(Exit::kCorrupt, Format("the MPEG audio cannot be decoded after %.3f s: %s",
                                          d.rate ? static_cast<double>(sink.input_frames()) / d.rate : 0.0, mpg123_strerror(mh)));
    }
    if (bytes > 0) {
      if (!started) Fail(Exit::kInternal, "libmpg123 returned audio before its format");
      sink.Push(block.data(), bytes / sizeof(float) / static_cast<size_t>(d.channels), d.channels);
    }
    if (r == MPG123_DONE) break;
  }
  if (!started) Fail(Exit::kEmpty, "the MPEG stream contains no audio frames");
  sink.Finish();
  return d;
}

// ---- main ---------------------------------------------------------------------------------

int Run(int argc, char** argv) {
  Options o = ParseOptions(argc, argv);
  ApplyLimits(o);

  int in_fd = open(o.input.c_str(), O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) Fail(Exit::kIo, Format("cannot open the input: %s", strerror(errno)));
  struct stat st;
  if (fstat(in_fd, &st) != 0 || !S_ISREG(st.st_mode)) Fail(Exit::kIo, "the input is not a regular file");
  // O_NOFOLLOW: the spool directory is ours, a symlink planted there is not.
  int out_fd = open(o.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (out_fd < 0) Fail(Exit::kIo, Format("cannot create the output: %s", strerror(errno)));

  bool sandboxed = o.seccomp && InstallSeccomp();
  if (o.selftest) {
    if (!sandboxed) Fail(Exit::kInternal, "seccomp is not available");
    syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    Fail(Exit::kInternal, "the sandbox let socket(2) through");
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

}  // namespace

int main(int argc, char** argv) {
  Exit exit;
  std::string message;
  try {
    return Run(argc, argv);
  } catch (const DecodeError& e) {
    exit = e.exit;
    message = e.message;
    // A codec that could not allocate reports "lost sync", "malformed" or a short read; when
    // an allocation failed along the way, the memory limit is the cause to report.
    if (g_alloc_failed && exit != Exit::kTooLong && exit != Exit::kUsage && exit != Exit::kLimit) {
      exit = Exit::kLimit;
      message = "the decoder ran out of memory under its address-space limit (the codec then reported: " + message + ")";
    }
  } catch (const std::bad_alloc&) {
    exit = Exit::kLimit;
    message = "the decoder ran out of memory (its address-space limit)";
  } catch (const std::exception& e) {
    exit = g_alloc_failed ? Exit::kLimit : Exit::kInternal;
    message = std::string("internal error: ") + e.what();
  }
  PrintLine(std::string("{\"ok\":false,\"code\":\"") + CodeFor(exit) + "\",\"message\":" + JsonString(message) + "}");
  return static_cast<int>(exit);
}
