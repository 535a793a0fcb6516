#include "transcribe-options.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>

namespace earshot {
namespace {

// Types only: ranges are checked in TypeScript.
template <typename T>
T Get(const Napi::Object& o, const char* key, T fallback);

template <>
bool Get<bool>(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a boolean");
  return v.As<Napi::Boolean>();
}

template <>
double Get<double>(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) {
    throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a finite number");
  }
  return v.As<Napi::Number>().DoubleValue();
}

template <>
float Get<float>(const Napi::Object& o, const char* key, float fallback) {
  return static_cast<float>(Get<double>(o, key, fallback));
}

template <>
int Get<int>(const Napi::Object& o, const char* key, int fallback) {
  const double d = Get<double>(o, key, fallback);
  if (d != std::floor(d) || d < -1e9 || d > 1e9) {
    throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be an integer");
  }
  return static_cast<int>(d);
}

template <>
std::string Get<std::string>(const Napi::Object& o, const char* key, std::string fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a string");
  return v.As<Napi::String>();
}

}  // namespace

TranscribeOptions ReadOptions(const Napi::Object& o) {
  TranscribeOptions d;
  TranscribeOptions r;
  r.threads = Get(o, "threads", d.threads);
  r.nice = Get(o, "nice", d.nice);
  r.language = Get(o, "language", d.language);
  r.translate = Get(o, "translate", d.translate);
  r.beam_search = Get(o, "strategy", std::string("greedy")) == "beam";
  r.best_of = Get(o, "bestOf", d.best_of);
  r.beam_size = Get(o, "beamSize", d.beam_size);
  r.temperature = Get(o, "temperature", d.temperature);
  r.temperature_inc = Get(o, "temperatureIncrement", d.temperature_inc);
  r.entropy_thold = Get(o, "entropyThreshold", d.entropy_thold);
  r.logprob_thold = Get(o, "logprobThreshold", d.logprob_thold);
  r.no_speech_thold = Get(o, "noSpeechThreshold", d.no_speech_thold);
  r.initial_prompt = Get(o, "initialPrompt", d.initial_prompt);
  r.condition_on_previous_text = Get(o, "conditionOnPreviousText", d.condition_on_previous_text);
  r.token_timestamps = Get(o, "tokenTimestamps", d.token_timestamps);
  r.words = Get(o, "words", d.words);
  r.max_segment_chars = Get(o, "maxSegmentLength", d.max_segment_chars);
  r.split_on_word = Get(o, "splitOnWord", d.split_on_word);
  r.suppress_blank = Get(o, "suppressBlank", d.suppress_blank);
  r.suppress_non_speech = Get(o, "suppressNonSpeech", d.suppress_non_speech);
  r.audio_ctx = Get(o, "audioCtx", d.audio_ctx);
  r.trim_encoder = Get(o, "trimEncoder", d.trim_encoder);
  r.trim_margin_ms = Get(o, "trimMarginMs", d.trim_margin_ms);
  r.vad_model = Get(o, "vadModel", d.vad_model);
  r.vad_threshold = Get(o, "vadThreshold", d.vad_threshold);
  r.vad_min_speech_ms = Get(o, "vadMinSpeechMs", d.vad_min_speech_ms);
  r.vad_min_silence_ms = Get(o, "vadMinSilenceMs", d.vad_min_silence_ms);
  r.vad_speech_pad_ms = Get(o, "vadSpeechPadMs", d.vad_speech_pad_ms);
  r.window_seconds = Get(o, "windowSeconds", d.window_seconds);
  r.interactive = Get(o, "interactive", d.interactive);
  if (r.threads < 1 || r.window_seconds < 30 || r.nice < 0 || r.nice > 19 || r.trim_margin_ms < 0) {
    throw Napi::RangeError::New(o.Env(), "threads must be >= 1, nice 0..19, windowSeconds >= 30 and trimMarginMs >= 0");
  }
  return r;
}

AudioSource ReadSource(const Napi::Value& v) {
  AudioSource s;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    s.pcm.assign(a.Data(), a.Data() + a.ElementLength());
    return s;
  }
  if (v.IsObject() && !v.IsArray()) {
    Napi::Object o = v.As<Napi::Object>();
    if (o.Has("fd")) {
      const double fd = Get(o, "fd", -1.0);
      const double length = Get(o, "length", -1.0);
      if (fd >= 0 && fd <= INT32_MAX && std::floor(fd) == fd && length > 0 && std::floor(length) == length) {
        s.stream = OwnedFd(static_cast<int>(fd));
        s.length = static_cast<int64_t>(length);
        return s;
      }
      throw Napi::TypeError::New(v.Env(), "a stream must be {fd, length} with a descriptor and a positive sample count");
    }
    s.path = Get(o, "path", std::string());
    const double offset = Get(o, "offset", 0.0);
    const double length = Get(o, "length", -1.0);
    if (!s.path.empty() && offset >= 0 && length >= -1) {
      s.offset = static_cast<int64_t>(offset);
      s.length = static_cast<int64_t>(length);
      return s;
    }
  }
  throw Napi::TypeError::New(v.Env(), "audio must be a Float32Array, {path, offset?, length?} or {fd, length}");
}

void OwnedFd::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

whisper_full_params MakeParams(const TranscribeOptions& o) {
  whisper_full_params params =
      whisper_full_default_params(o.beam_search ? WHISPER_SAMPLING_BEAM_SEARCH : WHISPER_SAMPLING_GREEDY);
  params.n_threads = o.threads;
  params.translate = o.translate;
  params.no_context = !o.condition_on_previous_text;
  params.print_progress = false;
  params.print_realtime = false;
  params.print_timestamps = false;
  params.print_special = false;
  params.token_timestamps = o.token_timestamps || o.words;
  params.max_len = o.max_segment_chars;
  params.split_on_word = o.split_on_word;
  params.audio_ctx = o.audio_ctx;
  params.initial_prompt = o.initial_prompt.empty() ? nullptr : o.initial_prompt.c_str();
  params.language = o.language.c_str();
  params.detect_language = false;
  params.suppress_blank = o.suppress_blank;
  params.suppress_nst = o.suppress_non_speech;
  params.temperature = o.temperature;
  params.temperature_inc = o.temperature_inc;
  params.entropy_thold = o.entropy_thold;
  params.logprob_thold = o.logprob_thold;
  params.no_speech_thold = o.no_speech_thold;
  params.greedy.best_of = o.best_of;
  params.beam_search.beam_size = o.beam_size;
  if (!o.vad_model.empty()) {
    params.vad = true;
    params.vad_model_path = o.vad_model.c_str();
    params.vad_params = whisper_vad_default_params();
    params.vad_params.threshold = o.vad_threshold;
    params.vad_params.min_speech_duration_ms = o.vad_min_speech_ms;
    params.vad_params.min_silence_duration_ms = o.vad_min_silence_ms;
    params.vad_params.speech_pad_ms = o.vad_speech_pad_ms;
  }
  return params;
}

}  // namespace earshot
