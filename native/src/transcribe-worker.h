// One transcription: runs whisper_full over the audio, window by window, off the JS
// thread; reports progress (and, when asked, each segment as soon as it is final) through
// an AsyncProgressQueueWorker and stops early through whisper's abort callback. Its arguments are decoded by transcribe-options.cc, its result
// marshalled by transcribe-result.cc: this file is the window loop.
#ifndef EARSHOT_TRANSCRIBE_WORKER_H_
#define EARSHOT_TRANSCRIBE_WORKER_H_

#include <napi.h>

#include <atomic>
#include <memory>
#include <string>

#include "errors.h"
#include "model.h"
#include "transcribe-options.h"
#include "transcribe-result.h"

namespace earshot {

class TranscribeWorker : public Napi::AsyncProgressQueueWorker<Progress> {
 public:
  // Throws a JS TypeError on wrongly typed arguments; returns {promise, abort}.
  static Napi::Value Start(Model* model, const Napi::CallbackInfo& info);

 protected:
  void Execute(const ExecutionProgress& progress) override;
  void OnProgress(const Progress* data, size_t count) override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  TranscribeWorker(Napi::Env env, Model* model, Napi::Object model_object, AudioSource source,
                   TranscribeOptions options, Napi::Function on_progress, Napi::Function on_segment);
  void Run(const ExecutionProgress& progress);
  void Fail(const std::string& code, const std::string& message);

  Model* model_;
  Lane lane_;
  Napi::ObjectReference model_ref_;  // keeps the Model alive while the worker runs
  Napi::FunctionReference on_progress_;
  Napi::FunctionReference on_segment_;
  bool stream_segments_;  // on_segment_ was given (read off the JS thread, unlike the reference)
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<std::atomic<bool>> aborted_;
  AudioSource source_;
  TranscribeOptions options_;

  Failure failure_;
  TranscribeResult result_;
};

}  // namespace earshot

#endif  // EARSHOT_TRANSCRIBE_WORKER_H_
