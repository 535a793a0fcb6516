#include "model.h"

#include <chrono>
#include <memory>

#include "errors.h"
#include "log-bridge.h"
#include "transcribe-worker.h"
#include "whisper.h"

namespace earshot {
namespace {

// Checks the file, then lets whisper.cpp load it; both off the JS thread.
class LoadWorker : public Napi::AsyncWorker {
 public:
  // `verified`: the summary of an earlier check of this same file (the caller vouches
  // that it is unchanged); the check is skipped and this summary reported.
  LoadWorker(Napi::Env env, Model* model, Napi::Object model_object, std::string path, bool flash_attn,
             const ModelSummary* verified)
      : Napi::AsyncWorker(env, "earshot:load"),
        model_(model),
        model_ref_(Napi::Persistent(model_object)),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        flash_attn_(flash_attn),
        checked_(verified == nullptr) {
    if (verified != nullptr) summary_ = *verified;
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    const auto started = std::chrono::steady_clock::now();
    if (checked_) failure_ = CheckModelFile(path_, &summary_);
    check_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    if (!failure_.failed()) {
      whisper_context_params params = whisper_context_default_params();
      params.use_gpu = false;
      params.flash_attn = flash_attn_;
      LogCapture capture;
      try {
        ctx_ = whisper_init_from_file_with_params(path_.c_str(), params);
      } catch (const std::exception& e) {
        ctx_ = nullptr;
        failure_ = {kErrModelLoad, std::string("whisper.cpp could not load ") + path_ + ": " + e.what()};
      }
      if (ctx_ == nullptr && !failure_.failed()) {
        const std::string why = capture.Problems();
        failure_ = {kErrModelLoad, "whisper.cpp could not load " + path_ + (why.empty() ? "" : ": " + why)};
      }
    }
    load_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    if (failure_.failed()) SetError(failure_.message);
  }

  void OnOK() override {
    model_->Adopt(ctx_, summary_, path_, load_ms_, flash_attn_, checked_, check_ms_);
    model_->Release();
    deferred_.Resolve(model_->Info(Env()));
  }

  void OnError(const Napi::Error& /*error*/) override {
    model_->Release();
    deferred_.Reject(MakeError(Env(), failure_.code, failure_.message).Value());
  }

 private:
  Model* model_;
  Napi::ObjectReference model_ref_;
  Napi::Promise::Deferred deferred_;
  std::string path_;
  bool flash_attn_;
  bool checked_;
  Failure failure_;
  ModelSummary summary_;
  whisper_context* ctx_ = nullptr;
  double load_ms_ = 0;
  double check_ms_ = 0;
};

Napi::Promise Rejected(Napi::Env env, const char* code, const std::string& message) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(MakeError(env, code, message).Value());
  return deferred.Promise();
}

}  // namespace

Napi::Function Model::Define(Napi::Env env) {
  return DefineClass(env, "Model",
                     {InstanceMethod<&Model::Load>("load"), InstanceMethod<&Model::Transcribe>("transcribe"),
                      InstanceMethod<&Model::Free>("free"), InstanceAccessor<&Model::GetInfo>("info"),
                      InstanceAccessor<&Model::GetLoaded>("loaded")});
}

Model::Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {}

void BatchPause::BeginInteractive() {
  std::lock_guard<std::mutex> lock(mutex_);
  interactive_ = true;
}

void BatchPause::EndInteractive() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    interactive_ = false;
  }
  changed_.notify_all();
}

double BatchPause::WaitWhileInteractive(const std::atomic<bool>& aborted) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!interactive_ || aborted.load()) return 0;
  const auto started = std::chrono::steady_clock::now();
  changed_.wait(lock, [&] { return !interactive_ || aborted.load(); });
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
}

void BatchPause::Wake() {
  // Taking the lock orders this after a waiter's check of the flag: no lost wake-up.
  { std::lock_guard<std::mutex> lock(mutex_); }
  changed_.notify_all();
}

Model::~Model() {
  // Workers hold a reference to this object while they run, so it is idle here.
  FreeContext();
}

void Model::FreeContext() {
  if (interactive_state_ != nullptr) {
    whisper_free_state(interactive_state_);
    interactive_state_ = nullptr;
  }
  if (ctx_ != nullptr) {
    whisper_free(ctx_);
    ctx_ = nullptr;
  }
}

void Model::Adopt(whisper_context* ctx, const ModelSummary& summary, const std::string& path, double load_ms,
                  bool flash_attn, bool checked, double check_ms) {
  checked_ = checked;
  check_ms_ = check_ms;
  ctx_ = ctx;
  summary_ = summary;
  path_ = path;
  load_ms_ = load_ms;
  flash_attn_ = flash_attn;
}

Napi::Value Model::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "load(path, options?) expects a string path");
  bool flash_attn = true;
  std::unique_ptr<ModelSummary> verified;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value v = info[1].As<Napi::Object>().Get("flashAttn");
    if (!v.IsUndefined()) {
      if (!v.IsBoolean()) throw Napi::TypeError::New(env, "option flashAttn must be a boolean");
      flash_attn = v.As<Napi::Boolean>();
    }
    Napi::Value known = info[1].As<Napi::Object>().Get("verified");
    if (!known.IsUndefined()) {
      if (!known.IsObject()) throw Napi::TypeError::New(env, "option verified must be an object");
      verified = std::make_unique<ModelSummary>(SummaryFromObject(env, known.As<Napi::Object>()));
    }
  }
  if (ctx_ != nullptr) return Rejected(env, kErrModelBusy, "a model is already loaded; free() it first");
  if (!TryClaim()) return Rejected(env, kErrModelBusy, "the model is busy");
  auto* worker =
      new LoadWorker(env, this, info.This().As<Napi::Object>(), info[0].As<Napi::String>(), flash_attn, verified.get());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Model::Transcribe(const Napi::CallbackInfo& info) { return TranscribeWorker::Start(this, info); }

Napi::Value Model::Free(const Napi::CallbackInfo& info) {
  if (busy_.load() || interactive_busy_.load()) {
    throw MakeError(info.Env(), kErrModelBusy, "cannot free a model while it is loading or transcribing");
  }
  FreeContext();
  return info.Env().Undefined();
}

Napi::Object Model::Info(Napi::Env env) const {
  Napi::Object o = SummaryObject(env, summary_);
  o.Set("path", path_);
  o.Set("type", ctx_ != nullptr ? whisper_model_type_readable(ctx_) : "");
  o.Set("flashAttn", flash_attn_);
  o.Set("loadMs", load_ms_);
  o.Set("checked", checked_);
  o.Set("checkMs", check_ms_);
  return o;
}

Napi::Value Model::GetInfo(const Napi::CallbackInfo& info) {
  if (ctx_ == nullptr) return info.Env().Null();
  return Info(info.Env());
}

Napi::Value Model::GetLoaded(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), ctx_ != nullptr); }

}  // namespace earshot
