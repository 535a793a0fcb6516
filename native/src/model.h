// Model: one whisper.cpp context, loaded once and used by one transcription at a time.
// JavaScript sees a small promise-based object; all argument checking with friendly
// messages happens in TypeScript (src/engine/whisper-engine.ts), this side only refuses
// wrong types.
#ifndef EARSHOT_MODEL_H_
#define EARSHOT_MODEL_H_

#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "model-check.h"

struct whisper_context;
struct whisper_state;

namespace earshot {

// Which of the model's two transcriptions a worker is: the batch lane runs on the
// context's own whisper state, the interactive lane (someone is waiting for the answer)
// on a second state that shares the weights, and pauses the batch lane while it runs.
enum class Lane { kBatch, kInteractive };

// Holds the batch transcription while an interactive one runs. The batch worker waits in
// whisper's abort and encoder-begin callbacks, so it keeps every finished step and its
// results are those of an uninterrupted run; ggml's other OpenMP threads wait in an OpenMP
// barrier meanwhile, which sleeps after a short spin.
class BatchPause {
 public:
  void BeginInteractive();
  void EndInteractive();
  // Blocks while an interactive transcription runs, unless `aborted` is (or becomes) set;
  // returns the milliseconds it waited.
  double WaitWhileInteractive(const std::atomic<bool>& aborted);
  // An abort flag changed: a waiting batch worker looks at it again.
  void Wake();

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool interactive_ = false;
};

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Model(const Napi::CallbackInfo& info);
  ~Model() override;

  // Claimed by a worker for its whole run, one per lane (loading claims the batch lane);
  // released on the JS thread when it settles.
  bool TryClaim(Lane lane = Lane::kBatch) { return !(lane == Lane::kBatch ? busy_ : interactive_busy_).exchange(true); }
  void Release(Lane lane = Lane::kBatch) { (lane == Lane::kBatch ? busy_ : interactive_busy_).store(false); }

  whisper_context* context() const { return ctx_; }
  // The interactive lane's whisper state, made on its first use and kept with the model
  // (null until then); only the holder of the interactive claim touches it.
  whisper_state* interactive_state() const { return interactive_state_; }
  void set_interactive_state(whisper_state* state) { interactive_state_ = state; }
  const std::shared_ptr<BatchPause>& batch_pause() const { return batch_pause_; }
  // `checked`: whether this load ran the model check (false: a summary remembered from an
  // earlier check was given); `check_ms`: how long the check took.
  void Adopt(whisper_context* ctx, const ModelSummary& summary, const std::string& path, double load_ms, bool flash_attn,
             bool checked, double check_ms);
  Napi::Object Info(Napi::Env env) const;

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Transcribe(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value GetLoaded(const Napi::CallbackInfo& info);

  void FreeContext();

  whisper_context* ctx_ = nullptr;
  whisper_state* interactive_state_ = nullptr;
  std::atomic<bool> busy_{false};
  std::atomic<bool> interactive_busy_{false};
  // Shared with the abort functions handed to JavaScript, which may outlive the model.
  std::shared_ptr<BatchPause> batch_pause_ = std::make_shared<BatchPause>();
  ModelSummary summary_;
  std::string path_;
  double load_ms_ = 0;
  bool flash_attn_ = false;
  bool checked_ = false;
  double check_ms_ = 0;
};

}  // namespace earshot

#endif  // EARSHOT_MODEL_H_
