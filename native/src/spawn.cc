// Starting a child process without fork(): see spawn.h and src/engine/native-spawn.ts.
//
// glibc's posix_spawn() uses clone(CLONE_VM | CLONE_VFORK): the child shares the parent's
// memory until it has exec'd, so no page tables are copied (a fork of the ~250 MB service
// blocked its event loop for 15–30 ms), and it returns the exec's errno. The child is then
// reaped by a thread of its own: it waits with waitid(WNOWAIT), which leaves the zombie in
// place, and the actual waitpid() runs on the JS thread just before onExit, so that a kill
// sent from JS before onExit can never reach a reused pid. libuv reaps only the pids of its
// own process handles (waitpid(pid, WNOHANG) for each), never ours.
#include "spawn.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "errors.h"

namespace earshot {
namespace {

// Most descriptors a child is given (0..N-1).
constexpr uint32_t kMaxChildFds = 64;

// As Node's own spawn errors look: "spawn FILE ENOENT" with code, errno (negative), syscall, path.
Napi::Error SpawnError(Napi::Env env, const std::string& file, int err) {
  const std::string code = ErrnoName(err);
  Napi::Error error = Napi::Error::New(env, "spawn " + file + " " + code);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, "spawn"));
  error.Set("path", Napi::String::New(env, file));
  return error;
}

std::vector<std::string> Strings(Napi::Env env, Napi::Value value, const char* what) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, std::string("spawnProcess: ") + what + " must be an array of strings");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<std::string> strings;
  strings.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value item = array.Get(i);
    if (!item.IsString()) throw Napi::TypeError::New(env, std::string("spawnProcess: ") + what + " must be an array of strings");
    strings.push_back(item.As<Napi::String>());
    if (strings.back().find('\0') != std::string::npos) {
      throw Napi::TypeError::New(env, std::string("spawnProcess: ") + what + " must not contain NUL characters");
    }
  }
  return strings;
}

std::vector<char*> Pointers(std::vector<std::string>& strings, std::string* first = nullptr) {
  std::vector<char*> pointers;
  if (first != nullptr) pointers.push_back(first->data());
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Owns what one spawn needs in the parent; closes the moved descriptors on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  std::vector<int> moved;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    for (int fd : moved) close(fd);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

// Runs on the JS thread once the reaper saw the child end: reaps it and calls onExit.
void ReportExit(Napi::Env env, Napi::Function on_exit, pid_t pid) {
  int status = 0;
  pid_t reaped;
  do reaped = waitpid(pid, &status, 0);
  while (reaped < 0 && errno == EINTR);
  if (on_exit.IsEmpty()) return;  // the environment is going away
  if (reaped != pid) {
    on_exit.Call({env.Null(), env.Null()});  // not ours to reap after all (SIGCHLD ignored?)
  } else if (WIFSIGNALED(status)) {
    on_exit.Call({env.Null(), Napi::Number::New(env, WTERMSIG(status))});
  } else {
    on_exit.Call({Napi::Number::New(env, WEXITSTATUS(status)), Napi::Number::New(env, 0)});
  }
}

}  // namespace

Napi::Value SpawnProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsString() || !info[3].IsArray() || !info[4].IsFunction()) {
    throw Napi::TypeError::New(env, "spawnProcess(file, args, env, childFds, onExit) expects a string, two arrays of strings, an array of descriptors and a function");
  }
  std::string file = info[0].As<Napi::String>();
  std::vector<std::string> args = Strings(env, info[1], "args");
  std::vector<std::string> environment = Strings(env, info[2], "env");
  Napi::Array fds_value = info[3].As<Napi::Array>();
  const uint32_t count = fds_value.Length();
  if (count < 3 || count > kMaxChildFds) throw Napi::RangeError::New(env, "spawnProcess: childFds must map fds 0, 1 and 2 at least (and at most 64)");
  std::vector<int> sources(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value fd = fds_value.Get(i);
    if (!fd.IsNumber()) throw Napi::TypeError::New(env, "spawnProcess: childFds must be descriptors (or -1 for /dev/null)");
    const double n = fd.As<Napi::Number>().DoubleValue();
    if (n != static_cast<int>(n) || n < -1) throw Napi::RangeError::New(env, "spawnProcess: childFds must be descriptors (or -1 for /dev/null)");
    sources[i] = static_cast<int>(n);
  }

  // posix_spawn() reports a failed exec itself, but only through the memory it shares with
  // the child: under qemu-user, which turns CLONE_VM | CLONE_VFORK into a fork, a missing
  // binary would be a child exiting with 127 instead. So the usual failures are found first.
  if (access(file.c_str(), X_OK) != 0) throw SpawnError(env, file, errno);

  SpawnSetup setup;
  for (uint32_t i = 0; i < count; i++) {
    int source = sources[i];
    if (source >= 0 && static_cast<uint32_t>(source) < count) {
      // A source among the targets (itself included) is moved above them first: the dup2 of
      // another mapping would replace it, and dup2(fd, fd) would leave its close-on-exec set.
      const int moved = fcntl(source, F_DUPFD_CLOEXEC, static_cast<int>(count));
      if (moved < 0) throw SpawnError(env, file, errno);
      setup.moved.push_back(moved);
      source = moved;
    }
    // dup2 to another number clears close-on-exec on the child's copy.
    const int rc = source < 0 ? posix_spawn_file_actions_addopen(&setup.actions, static_cast<int>(i), "/dev/null", O_RDWR, 0)
                              : posix_spawn_file_actions_adddup2(&setup.actions, source, static_cast<int>(i));
    if (rc != 0) throw SpawnError(env, file, rc);
  }
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
  // Whatever the parent has without close-on-exec (a descriptor it inherited, a library's
  // careless open) stays out of the child.
  if (const int rc = posix_spawn_file_actions_addclosefrom_np(&setup.actions, static_cast<int>(count)); rc != 0) {
    throw SpawnError(env, file, rc);
  }
#endif
  // As libuv does for its children: no blocked signals, every signal at its default (Node
  // ignores SIGPIPE, and an ignored signal would stay ignored across exec).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setsigdefault(&setup.attr, &all);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv = Pointers(args, &file);
  std::vector<char*> envp = Pointers(environment);
  // On this (the JS) thread, which the child's PR_SET_PDEATHSIG refers to: a worker thread
  // that exits would kill the decoder with it.
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, file.c_str(), &setup.actions, &setup.attr, argv.data(), envp.data());
  if (rc != 0) throw SpawnError(env, file, rc);

  Napi::ThreadSafeFunction tsfn = Napi::ThreadSafeFunction::New(env, info[4].As<Napi::Function>(), "earshot-reaper", 0, 1);
  // The reaper starts with every signal blocked: they go to threads that handle them.
  sigset_t old;
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    std::thread([pid, tsfn]() mutable {
      siginfo_t si;
      int rc;
      do rc = waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT);
      while (rc != 0 && errno == EINTR);
      tsfn.BlockingCall([pid](Napi::Env env, Napi::Function on_exit) { ReportExit(env, on_exit, pid); });
      tsfn.Release();
    }).detach();
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    // No thread to wait for it: the child must not run unobserved.
    kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    tsfn.Release();
    throw SpawnError(env, file, EAGAIN);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return Napi::Number::New(env, pid);
}

}  // namespace earshot
