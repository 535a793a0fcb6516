// Model: one whisper.cpp context, loaded once and used by one transcription at a time.
// JavaScript sees a small promise-based object; all argument checking with friendly
// messages happens in TypeScript (src/engine/whisper-engine.ts), this side only refuses
// wrong types.
#ifndef EARSHOT_MODEL_H_
#define EARSHOT_MODEL_H_

#include <napi.h>

#include <atomic>
#include <string>

#include "model-check.h"

struct whisper_context;

namespace earshot {

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Model(const Napi::CallbackInfo& info);
  ~Model() override;

  // Claimed by a worker for its whole run; released on the JS thread when it settles.
  bool TryClaim() { return !busy_.exchange(true); }
  void Release() { busy_.store(false); }

  whisper_context* context() const { return ctx_; }
  void Adopt(whisper_context* ctx, const ModelSummary& summary, const std::string& path, double load_ms, bool flash_attn);
  Napi::Object Info(Napi::Env env) const;

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Transcribe(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value GetLoaded(const Napi::CallbackInfo& info);

  whisper_context* ctx_ = nullptr;
  std::atomic<bool> busy_{false};
  ModelSummary summary_;
  std::string path_;
  double load_ms_ = 0;
  bool flash_attn_ = false;
};

}  // namespace earshot

#endif  // EARSHOT_MODEL_H_
