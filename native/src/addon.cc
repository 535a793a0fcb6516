// earshot's native addon: whisper.cpp behind a small promise-based API.
#include <fcntl.h>
#include <napi.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "durable-file.h"
#include "log-bridge.h"
#include "model-check.h"
#include "model.h"
#include "sd-notify.h"
#include "spawn.h"
#include "whisper.h"

namespace earshot {
namespace {

Napi::Value SystemInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), whisper_print_system_info());
}

Napi::Value Version(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), whisper_version()); }

// The language codes whisper knows, in its id order ("en", "zh", "de", ...).
Napi::Value Languages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int max_id = whisper_lang_max_id();
  Napi::Array codes = Napi::Array::New(env, max_id + 1);
  for (int id = 0; id <= max_id; id++) codes.Set(id, whisper_lang_str(id));
  return codes;
}

// checkModel(path) → summary, or throws an Error with a code; synchronous (tools, tests).
Napi::Value CheckModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "checkModel(path) expects a string");
  ModelSummary s;
  const Failure failure = CheckModelFile(info[0].As<Napi::String>(), &s);
  if (failure.failed()) throw MakeError(env, failure.code, failure.message);
  return SummaryObject(env, s);
}

// openPipe() → {read, write}: a pipe for the decoder to write PCM into and a transcription
// to read it from ({fd: read, length}); both ends close-on-exec (a child gets one only by
// name, as its stdio). The caller closes `write` once the decoder has it; the
// transcription closes `read`.
Napi::Value OpenPipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw MakeError(env, kErrInference, std::string("cannot create a pipe: ") + std::strerror(errno));
  Napi::Object ends = Napi::Object::New(env);
  ends.Set("read", fds[0]);
  ends.Set("write", fds[1]);
  return ends;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLogBridge(env);
  exports.Set("Model", Model::Define(env));
  exports.Set("systemInfo", Napi::Function::New(env, SystemInfo));
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("languages", Napi::Function::New(env, Languages));
  exports.Set("checkModel", Napi::Function::New(env, CheckModel));
  exports.Set("setLogger", Napi::Function::New(env, SetLogger));
  exports.Set("notify", Napi::Function::New(env, Notify));
  exports.Set("openPipe", Napi::Function::New(env, OpenPipe));
  exports.Set("spawnProcess", Napi::Function::New(env, SpawnProcess));
  exports.Set("writeNewFile", Napi::Function::New(env, WriteNewFile));
  return exports;
}

}  // namespace earshot

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return earshot::Init(env, exports); }

NODE_API_MODULE(earshot, InitAddon)
