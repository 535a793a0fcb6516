// One transcription: runs whisper_full over the audio, window by window, off the JS
// thread; reports progress through an AsyncProgressQueueWorker and stops early through
// whisper's abort callback.
#ifndef EARSHOT_TRANSCRIBE_WORKER_H_
#define EARSHOT_TRANSCRIBE_WORKER_H_

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "model.h"

struct whisper_context;

namespace earshot {

struct TranscribeOptions {
  int threads = 1;
  int nice = 0;                 // added to the inference threads' nice value (0..19)
  std::string language = "en";  // "auto" detects it from the first window
  bool translate = false;
  bool beam_search = false;
  int best_of = 5;
  int beam_size = 5;
  float temperature = 0.0f;
  float temperature_inc = 0.2f;  // 0 disables the fallback to higher temperatures
  float entropy_thold = 2.4f;
  float logprob_thold = -1.0f;
  float no_speech_thold = 0.6f;
  std::string initial_prompt;
  bool condition_on_previous_text = true;
  bool token_timestamps = false;
  bool words = false;
  int max_segment_chars = 0;
  bool split_on_word = false;
  bool suppress_blank = true;
  bool suppress_non_speech = false;
  int audio_ctx = 0;
  std::string vad_model;  // empty: no VAD
  float vad_threshold = 0.5f;
  int vad_min_speech_ms = 250;
  int vad_min_silence_ms = 100;
  int vad_speech_pad_ms = 30;
  double window_seconds = 300;
};

// Either PCM handed over from JavaScript or a window of a spool file of float32 samples.
struct AudioSource {
  std::vector<float> pcm;
  std::string path;
  int64_t offset = 0;   // samples
  int64_t length = -1;  // samples; -1 = to the end of the file
};

struct TokenResult {
  int32_t id;
  std::string text;
  float p, plog;
  int64_t start_ms, end_ms;
};

struct WordResult {
  std::string text;
  int64_t start_ms, end_ms;
  float confidence;  // mean of the token probabilities, as openai-whisper computes it
};

struct SegmentResult {
  int64_t start_ms, end_ms;
  std::string text;
  float no_speech_prob;
  bool speaker_turn_next;
  std::vector<TokenResult> tokens;
  std::vector<WordResult> words;
};

struct Timings {
  double mel_ms = 0, sample_ms = 0, encode_ms = 0, decode_ms = 0, batchd_ms = 0, prompt_ms = 0, total_ms = 0;
  int encode_runs = 0, decode_runs = 0, fallbacks = 0;
};

struct Progress {
  double percent;
  int64_t processed_ms;
};

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
                   TranscribeOptions options, Napi::Function on_progress);
  void Run(const ExecutionProgress& progress);
  void Fail(const std::string& code, const std::string& message);

  Model* model_;
  Napi::ObjectReference model_ref_;  // keeps the Model alive while the worker runs
  Napi::FunctionReference on_progress_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<std::atomic<bool>> aborted_;
  AudioSource source_;
  TranscribeOptions options_;

  Failure failure_;
  std::vector<SegmentResult> segments_;
  std::string language_;
  int64_t duration_ms_ = 0;
  int windows_ = 0;
  Timings timings_;
  double last_percent_ = -1;
};

}  // namespace earshot

#endif  // EARSHOT_TRANSCRIBE_WORKER_H_
