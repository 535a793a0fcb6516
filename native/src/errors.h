// Errors cross into JavaScript as Error objects with a string `code` (see src/errors.ts).
#ifndef EARSHOT_ERRORS_H_
#define EARSHOT_ERRORS_H_

#include <napi.h>

#include <cstring>
#include <string>

namespace earshot {

inline constexpr const char* kErrInvalidArgument = "ERR_INVALID_ARGUMENT";
inline constexpr const char* kErrModelNotFound = "ERR_MODEL_NOT_FOUND";
inline constexpr const char* kErrModelInvalid = "ERR_MODEL_INVALID";
inline constexpr const char* kErrModelLoad = "ERR_MODEL_LOAD";
inline constexpr const char* kErrModelBusy = "ERR_MODEL_BUSY";
inline constexpr const char* kErrModelFreed = "ERR_MODEL_FREED";
inline constexpr const char* kErrInference = "ERR_INFERENCE";
inline constexpr const char* kErrAborted = "ERR_ABORTED";
inline constexpr const char* kErrAudioEmpty = "ERR_AUDIO_EMPTY";
inline constexpr const char* kErrAudioRead = "ERR_AUDIO_CORRUPT";
inline constexpr const char* kErrSystemd = "ERR_SYSTEMD";

// A failure computed off the JS thread, turned into an Error once back on it.
struct Failure {
  std::string code;
  std::string message;
  bool failed() const { return !code.empty(); }
};

inline Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// An errno's name ("ENOENT"), as Node's errors carry it in `code`.
inline std::string ErrnoName(int err) {
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
#endif
  return "E" + std::to_string(err);
}

}  // namespace earshot

#endif  // EARSHOT_ERRORS_H_
