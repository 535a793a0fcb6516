// A new file written and fsynced in one task on libuv's pool: see durable-file.h.
#include "durable-file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>
#include <vector>

#include "errors.h"

namespace earshot {
namespace {

class WriteNewFileWorker : public Napi::AsyncWorker {
 public:
  WriteNewFileWorker(Napi::Env env, std::string path, Napi::Array buffers, mode_t mode)
      : Napi::AsyncWorker(env, "earshot-write-new-file"), deferred_(Napi::Promise::Deferred::New(env)), path_(std::move(path)), mode_(mode) {
    // The buffers stay referenced (alive, unmoved) until the task is done.
    buffers_ = Napi::Persistent(buffers.As<Napi::Object>());
    for (uint32_t i = 0; i < buffers.Length(); i++) {
      Napi::Buffer<char> buffer = buffers.Get(i).As<Napi::Buffer<char>>();
      if (buffer.Length() > 0) parts_.push_back({buffer.Data(), buffer.Length()});
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    int fd;
    do fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return Fail("open", errno);
    if (!WriteAll(fd) || !Sync(fd)) {
      close(fd);
      unlink(path_.c_str());  // created here: nothing of a failed upload stays
      return;
    }
    // After fsync the data is on the medium; a failing close (EIO on some file systems)
    // still says it may not be.
    if (close(fd) != 0 && errno != EINTR) {
      Fail("close", errno);
      unlink(path_.c_str());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ == 0) return deferred_.Resolve(env.Undefined());
    // As Node's fs errors look: "ENOSPC: no space left on device, write '/path'".
    const std::string code = ErrnoName(err_);
    Napi::Error error = Napi::Error::New(env, code + ": " + std::strerror(err_) + ", " + syscall_ + " '" + path_ + "'");
    error.Set("code", Napi::String::New(env, code));
    error.Set("errno", Napi::Number::New(env, -err_));
    error.Set("syscall", Napi::String::New(env, syscall_));
    error.Set("path", Napi::String::New(env, path_));
    deferred_.Reject(error.Value());
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  struct Part {
    const char* data;
    size_t length;
  };

  void Fail(const char* syscall, int err) {
    syscall_ = syscall;
    err_ = err;
  }

  // writev until every byte is written (a short write continues where it stopped).
  bool WriteAll(int fd) {
    std::vector<iovec> iov;
    iov.reserve(parts_.size());
    for (const Part& part : parts_) iov.push_back({const_cast<char*>(part.data), part.length});
    size_t first = 0;
    while (first < iov.size()) {
      const int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
      const ssize_t written = writev(fd, &iov[first], count);
      if (written < 0) {
        if (errno == EINTR) continue;
        Fail("write", errno);
        return false;
      }
      size_t left = static_cast<size_t>(written);
      while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (left > 0) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
    return true;
  }

  bool Sync(int fd) {
    if (fsync(fd) == 0) return true;
    Fail("fsync", errno);
    return false;
  }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference buffers_;
  std::vector<Part> parts_;
  std::string path_;
  mode_t mode_;
  int err_ = 0;
  const char* syscall_ = "";
};

}  // namespace

Napi::Value WriteNewFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsArray() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "writeNewFile(path, buffers, mode) expects a string, an array of Buffers and a number");
  }
  Napi::Array buffers = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < buffers.Length(); i++) {
    if (!buffers.Get(i).IsBuffer()) throw Napi::TypeError::New(env, "writeNewFile: buffers must be an array of Buffers");
  }
  auto* worker = new WriteNewFileWorker(env, info[0].As<Napi::String>(), buffers, static_cast<mode_t>(info[2].As<Napi::Number>().Uint32Value()));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace earshot
