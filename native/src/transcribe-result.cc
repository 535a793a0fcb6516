#include "transcribe-result.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "log-bridge.h"
#include "whisper.h"

namespace earshot {
namespace {

// Words are runs of text tokens; a token starting with a space starts a new word.
std::vector<WordResult> GroupWords(const std::vector<TokenResult>& tokens) {
  std::vector<WordResult> words;
  float p_sum = 0;
  int n = 0;
  auto flush = [&]() {
    if (n == 0) return;
    WordResult& w = words.back();
    w.confidence = p_sum / static_cast<float>(n);
    const size_t first = w.text.find_first_not_of(' ');
    w.text = first == std::string::npos ? "" : w.text.substr(first);
    if (w.text.empty()) words.pop_back();
    p_sum = 0;
    n = 0;
  };
  for (const auto& token : tokens) {
    if (n == 0 || (!token.text.empty() && token.text[0] == ' ')) {
      flush();
      words.push_back({"", token.start_ms, token.end_ms, 0});
    }
    WordResult& w = words.back();
    w.text += token.text;
    w.end_ms = token.end_ms;
    p_sum += token.p;
    n++;
  }
  flush();
  return words;
}

// What whisper_print_timings logs: the only place whisper reports the mel time, the run
// counts (its own max(1, n), the divisor of whisper_get_timings' averages) and the
// fallbacks, and the totals of each stage rounded to 0.01 ms.
enum Stage { kSample, kEncode, kDecode, kBatchd, kPrompt, kStages };
const char* const kStageLabels[kStages] = {"sample time", "encode time", "decode time", "batchd time", "prompt time"};

struct LoggedTimings {
  double mel_ms = 0;
  double total_ms[kStages] = {};
  int runs[kStages] = {};
  int fallbacks = 0;
};

LoggedTimings ParseTimingLines(const std::vector<LogLine>& lines) {
  LoggedTimings t;
  for (const auto& line : lines) {
    const char* s = line.text.c_str();
    auto value_after = [s](const char* label, double* ms, int* runs) {
      const char* at = std::strstr(s, label);
      if (at == nullptr) return;
      at += std::strlen(label);
      double v = 0;
      int n = 0;
      const int got = std::sscanf(at, " = %lf ms / %d", &v, &n);
      if (got >= 1) *ms = v;
      if (got == 2 && runs != nullptr) *runs = n;
    };
    value_after("mel time", &t.mel_ms, nullptr);
    for (int i = 0; i < kStages; i++) value_after(kStageLabels[i], &t.total_ms[i], &t.runs[i]);
    if (const char* at = std::strstr(s, "fallbacks =")) std::sscanf(at, "fallbacks = %d", &t.fallbacks);
  }
  return t;
}

}  // namespace

void AppendSegments(whisper_context* ctx, whisper_state* state, int first, int end, const WindowSpan& span,
                    const SegmentDetail& detail, std::vector<SegmentResult>* out) {
  const whisper_token eot = whisper_token_eot(ctx);
  auto to_ms = [&](int64_t centiseconds) { return std::min(span.offset_ms + centiseconds * 10, span.end_ms); };
  for (int i = first; i < end; i++) {
    SegmentResult seg;
    // whisper.cpp offers no getter of the context's own state: each read has both forms.
    seg.start_ms = to_ms(state ? whisper_full_get_segment_t0_from_state(state, i) : whisper_full_get_segment_t0(ctx, i));
    seg.end_ms = to_ms(state ? whisper_full_get_segment_t1_from_state(state, i) : whisper_full_get_segment_t1(ctx, i));
    seg.text = state ? whisper_full_get_segment_text_from_state(state, i) : whisper_full_get_segment_text(ctx, i);
    seg.no_speech_prob = state ? whisper_full_get_segment_no_speech_prob_from_state(state, i)
                               : whisper_full_get_segment_no_speech_prob(ctx, i);
    seg.speaker_turn_next = state ? whisper_full_get_segment_speaker_turn_next_from_state(state, i)
                                  : whisper_full_get_segment_speaker_turn_next(ctx, i);
    const int n_tokens = state ? whisper_full_n_tokens_from_state(state, i) : whisper_full_n_tokens(ctx, i);
    for (int k = 0; k < n_tokens; k++) {
      const whisper_token_data data =
          state ? whisper_full_get_token_data_from_state(state, i, k) : whisper_full_get_token_data(ctx, i, k);
      if (data.id >= eot) continue;  // special and timestamp tokens
      const bool timed = detail.token_timestamps && data.t0 >= 0 && data.t1 >= 0;
      const char* text =
          state ? whisper_full_get_token_text_from_state(ctx, state, i, k) : whisper_full_get_token_text(ctx, i, k);
      seg.tokens.push_back({data.id, text, data.p, data.plog, timed ? to_ms(data.t0) : -1, timed ? to_ms(data.t1) : -1});
    }
    if (detail.vad && !seg.tokens.empty() && seg.tokens.front().start_ms >= 0) {
      // whisper maps segment times back to the original audio after VAD removed
      // silence, but leaves token times on the shortened timeline: shift them by the
      // segment's offset (a segment lies within one stretch of speech) and keep them
      // inside the segment.
      const int64_t shift = seg.start_ms - seg.tokens.front().start_ms;
      for (auto& token : seg.tokens) {
        token.start_ms = std::clamp(token.start_ms + shift, seg.start_ms, seg.end_ms);
        token.end_ms = std::clamp(token.end_ms + shift, seg.start_ms, seg.end_ms);
      }
    }
    if (detail.words) seg.words = GroupWords(seg.tokens);
    out->push_back(std::move(seg));
  }
}

Timings ReadTimings(whisper_context* ctx) {
  LoggedTimings logged;
  {
    LogCapture capture(/*forward=*/false);
    whisper_print_timings(ctx);
    logged = ParseTimingLines(capture.lines());
  }
  double total_ms[kStages];
  std::copy(logged.total_ms, logged.total_ms + kStages, total_ms);
  // Milliseconds from whisper's API where it has them: per run, unrounded (the caller owns
  // the struct; whisper allocates it with new).
  const std::unique_ptr<whisper_timings> per_run(whisper_get_timings(ctx));
  if (per_run != nullptr) {
    const float ms[kStages] = {per_run->sample_ms, per_run->encode_ms, per_run->decode_ms, per_run->batchd_ms,
                               per_run->prompt_ms};
    for (int i = 0; i < kStages; i++) {
      // Whole microseconds, as whisper counts them (the float average carries noise below).
      if (logged.runs[i] > 0) total_ms[i] = std::round(static_cast<double>(ms[i]) * logged.runs[i] * 1000) / 1000;
    }
  }
  Timings t;
  t.mel_ms = logged.mel_ms;
  t.sample_ms = total_ms[kSample];
  t.encode_ms = total_ms[kEncode];
  t.decode_ms = total_ms[kDecode];
  t.batchd_ms = total_ms[kBatchd];
  t.prompt_ms = total_ms[kPrompt];
  t.encode_runs = logged.runs[kEncode];
  t.decode_runs = logged.runs[kDecode];
  t.fallbacks = logged.fallbacks;
  return t;
}

Napi::Object SegmentToJs(Napi::Env env, const SegmentResult& s) {
  Napi::Object seg = Napi::Object::New(env);
  seg.Set("start", static_cast<double>(s.start_ms));
  seg.Set("end", static_cast<double>(s.end_ms));
  seg.Set("text", s.text);
  seg.Set("noSpeechProb", s.no_speech_prob);
  seg.Set("speakerTurnNext", s.speaker_turn_next);
  Napi::Array tokens = Napi::Array::New(env, s.tokens.size());
  for (size_t k = 0; k < s.tokens.size(); k++) {
    const TokenResult& t = s.tokens[k];
    Napi::Object token = Napi::Object::New(env);
    token.Set("id", t.id);
    token.Set("text", t.text);
    token.Set("p", t.p);
    token.Set("plog", t.plog);
    token.Set("start", static_cast<double>(t.start_ms));
    token.Set("end", static_cast<double>(t.end_ms));
    tokens.Set(k, token);
  }
  seg.Set("tokens", tokens);
  Napi::Array words = Napi::Array::New(env, s.words.size());
  for (size_t k = 0; k < s.words.size(); k++) {
    const WordResult& w = s.words[k];
    Napi::Object word = Napi::Object::New(env);
    word.Set("text", w.text);
    word.Set("start", static_cast<double>(w.start_ms));
    word.Set("end", static_cast<double>(w.end_ms));
    word.Set("confidence", w.confidence);
    words.Set(k, word);
  }
  seg.Set("words", words);
  return seg;
}

Napi::Object ResultToJs(Napi::Env env, const TranscribeResult& result) {
  Napi::Object js = Napi::Object::New(env);
  Napi::Array segments = Napi::Array::New(env, result.segments.size());
  for (size_t i = 0; i < result.segments.size(); i++) segments.Set(i, SegmentToJs(env, result.segments[i]));
  js.Set("segments", segments);
  js.Set("language", result.language);
  js.Set("durationMs", static_cast<double>(result.duration_ms));
  js.Set("windows", result.windows);
  js.Set("audioCtx", result.audio_ctx);
  Napi::Object timings = Napi::Object::New(env);
  timings.Set("melMs", result.timings.mel_ms);
  timings.Set("sampleMs", result.timings.sample_ms);
  timings.Set("encodeMs", result.timings.encode_ms);
  timings.Set("decodeMs", result.timings.decode_ms);
  timings.Set("batchdMs", result.timings.batchd_ms);
  timings.Set("promptMs", result.timings.prompt_ms);
  timings.Set("totalMs", result.timings.total_ms);
  timings.Set("encodeRuns", result.timings.encode_runs);
  timings.Set("decodeRuns", result.timings.decode_runs);
  timings.Set("fallbacks", result.timings.fallbacks);
  js.Set("timings", timings);
  return js;
}

Napi::Object ProgressToJs(Napi::Env env, const Progress& progress) {
  Napi::Object p = Napi::Object::New(env);
  p.Set("percent", progress.percent);
  p.Set("processedMs", static_cast<double>(progress.processed_ms));
  return p;
}

}  // namespace earshot
