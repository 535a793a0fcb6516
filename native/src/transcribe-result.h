// Result marshalling for a transcription: what whisper produced for a window into plain C++
// (segments, tokens, words, timings) off the JS thread, and that into JavaScript objects on
// it.
#ifndef EARSHOT_TRANSCRIBE_RESULT_H_
#define EARSHOT_TRANSCRIBE_RESULT_H_

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

struct whisper_context;
struct whisper_state;

namespace earshot {

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

struct TranscribeResult {
  std::vector<SegmentResult> segments;
  std::string language;
  int64_t duration_ms = 0;
  int windows = 0;
  int audio_ctx = 0;  // encoder positions of the last window's run (the model's 1500: a full 30 s)
  Timings timings;
};

// What the worker reports while it runs, in order: progress, or segments that are final
// (the window overlap will not replace them), each as the result will have it.
struct Progress {
  double percent;
  int64_t processed_ms;
  std::vector<SegmentResult> segments;  // a segments report when not empty
};

// Where the window whisper_full just transcribed lies in the whole audio.
struct WindowSpan {
  int64_t offset_ms;
  int64_t end_ms;
};

// What to read besides segment text and times.
struct SegmentDetail {
  bool token_timestamps;  // tokens carry times (else -1)
  bool vad;               // token times are on VAD's shortened timeline: move them back
  bool words;             // group the tokens into words
};

// Appends whisper's segments [first, end) of the window to `out`, with times on the whole
// audio's timeline (never past the window's end) and without special tokens. `state` is
// the whisper state that ran, or null for the context's own.
void AppendSegments(whisper_context* ctx, whisper_state* state, int first, int end, const WindowSpan& span,
                    const SegmentDetail& detail, std::vector<SegmentResult>* out);

// whisper's timings since whisper_reset_timings; total_ms is left to the caller.
Timings ReadTimings(whisper_context* ctx);

// {segments, language, durationMs, windows, audioCtx, timings}, as src/engine/native.ts declares it.
Napi::Object ResultToJs(Napi::Env env, const TranscribeResult& result);

// One segment as the result's `segments` have it.
Napi::Object SegmentToJs(Napi::Env env, const SegmentResult& segment);

// {percent, processedMs}
Napi::Object ProgressToJs(Napi::Env env, const Progress& progress);

}  // namespace earshot

#endif  // EARSHOT_TRANSCRIBE_RESULT_H_
