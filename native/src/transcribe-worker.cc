#include "transcribe-worker.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "log-bridge.h"
#include "whisper.h"

namespace earshot {
namespace {

constexpr int kSampleRate = WHISPER_SAMPLE_RATE;
constexpr int64_t kSamplesPerCentisecond = kSampleRate / 100;
// whisper_full ignores input shorter than 100 ms; short tails are padded with silence.
constexpr int64_t kMinWindowSamples = kSampleRate;

// ---- argument reading: types only, ranges are checked in TypeScript ----------------

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
  r.vad_model = Get(o, "vadModel", d.vad_model);
  r.vad_threshold = Get(o, "vadThreshold", d.vad_threshold);
  r.vad_min_speech_ms = Get(o, "vadMinSpeechMs", d.vad_min_speech_ms);
  r.vad_min_silence_ms = Get(o, "vadMinSilenceMs", d.vad_min_silence_ms);
  r.vad_speech_pad_ms = Get(o, "vadSpeechPadMs", d.vad_speech_pad_ms);
  r.window_seconds = Get(o, "windowSeconds", d.window_seconds);
  if (r.threads < 1 || r.window_seconds < 30 || r.nice < 0 || r.nice > 19) {
    throw Napi::RangeError::New(o.Env(), "threads must be >= 1, nice 0..19 and windowSeconds >= 30");
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
    s.path = Get(o, "path", std::string());
    const double offset = Get(o, "offset", 0.0);
    const double length = Get(o, "length", -1.0);
    if (!s.path.empty() && offset >= 0 && length >= -1) {
      s.offset = static_cast<int64_t>(offset);
      s.length = static_cast<int64_t>(length);
      return s;
    }
  }
  throw Napi::TypeError::New(v.Env(), "audio must be a Float32Array or {path, offset?, length?}");
}

// Lowers the priority of the calling thread; threads it starts (ggml's) inherit it, so
// inference yields the CPU to the event loop whenever both want it.
void LowerPriority(int nice) {
  if (nice <= 0) return;
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid);
  if (errno != 0) return;
  setpriority(PRIO_PROCESS, tid, std::min(19, current + nice));
}

bool ReadSamples(int fd, int64_t first, int64_t count, std::vector<float>* out, std::string* error) {
  out->resize(static_cast<size_t>(count));
  auto* dst = reinterpret_cast<char*>(out->data());
  size_t want = static_cast<size_t>(count) * sizeof(float);
  off_t at = static_cast<off_t>(first) * static_cast<off_t>(sizeof(float));
  while (want > 0) {
    const ssize_t n = pread(fd, dst, want, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = n == 0 ? "audio file ended early" : std::string("reading audio: ") + std::strerror(errno);
      return false;
    }
    dst += n;
    at += n;
    want -= static_cast<size_t>(n);
  }
  return true;
}

// whisper_print_timings is the only place whisper reports totals (mel time included).
Timings ParseTimings(const std::vector<LogLine>& lines) {
  Timings t;
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
    value_after("sample time", &t.sample_ms, nullptr);
    value_after("encode time", &t.encode_ms, &t.encode_runs);
    value_after("decode time", &t.decode_ms, &t.decode_runs);
    value_after("batchd time", &t.batchd_ms, nullptr);
    value_after("prompt time", &t.prompt_ms, nullptr);
    if (const char* at = std::strstr(s, "fallbacks =")) std::sscanf(at, "fallbacks = %d", &t.fallbacks);
  }
  return t;
}

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

}  // namespace

TranscribeWorker::TranscribeWorker(Napi::Env env, Model* model, Napi::Object model_object, AudioSource source,
                                   TranscribeOptions options, Napi::Function on_progress)
    : Napi::AsyncProgressQueueWorker<Progress>(env, "earshot:transcribe"),
      model_(model),
      model_ref_(Napi::Persistent(model_object)),
      deferred_(Napi::Promise::Deferred::New(env)),
      aborted_(std::make_shared<std::atomic<bool>>(false)),
      source_(std::move(source)),
      options_(std::move(options)) {
  if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
}

Napi::Value TranscribeWorker::Start(Model* model, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AudioSource source = ReadSource(info[0]);
  Napi::Object options_object = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  TranscribeOptions options = ReadOptions(options_object);
  Napi::Function on_progress;
  if (info.Length() > 2 && info[2].IsFunction()) on_progress = info[2].As<Napi::Function>();

  Napi::Object task = Napi::Object::New(env);
  auto rejected = [&](const char* code, const char* message) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(MakeError(env, code, message).Value());
    task.Set("promise", deferred.Promise());
    task.Set("abort", Napi::Function::New(env, [](const Napi::CallbackInfo&) {}));
    return task;
  };
  if (model->context() == nullptr) return rejected(kErrModelFreed, "model is not loaded (or was freed)");
  if (!model->TryClaim()) return rejected(kErrModelBusy, "model is busy with another transcription");

  auto* worker = new TranscribeWorker(env, model, info.This().As<Napi::Object>(), std::move(source),
                                      std::move(options), on_progress);
  task.Set("promise", worker->deferred_.Promise());
  auto aborted = worker->aborted_;
  task.Set("abort", Napi::Function::New(env, [aborted](const Napi::CallbackInfo& i) {
             aborted->store(true);
             return i.Env().Undefined();
           }));
  worker->Queue();
  return task;
}

void TranscribeWorker::Fail(const std::string& code, const std::string& message) {
  if (!failure_.failed()) failure_ = {code, message};
}

void TranscribeWorker::Execute(const ExecutionProgress& progress) {
  // A thread of our own, so that lowering its priority never touches libuv's pool
  // threads, which also serve file system work for the event loop.
  std::thread inference([this, &progress]() {
    try {
      Run(progress);
    } catch (const std::exception& e) {
      Fail(kErrInference, std::string("transcription failed: ") + e.what());
    } catch (...) {
      Fail(kErrInference, "transcription failed");
    }
  });
  inference.join();
  if (failure_.failed()) SetError(failure_.message);
}

void TranscribeWorker::Run(const ExecutionProgress& progress) {
  const auto started = std::chrono::steady_clock::now();
  LowerPriority(options_.nice);
  whisper_context* ctx = model_->context();

  int fd = -1;
  int64_t first = 0;
  int64_t total = static_cast<int64_t>(source_.pcm.size());
  if (!source_.path.empty()) {
    fd = open(source_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(kErrAudioRead, "cannot open audio " + source_.path + ": " + std::strerror(errno));
    struct stat st {};
    fstat(fd, &st);
    const int64_t in_file = static_cast<int64_t>(st.st_size) / static_cast<int64_t>(sizeof(float));
    first = std::min(source_.offset, in_file);
    total = in_file - first;
    if (source_.length >= 0) total = std::min(total, source_.length);
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { if (fd >= 0) close(fd); }
  } closer{fd};
  duration_ms_ = total * 1000 / kSampleRate;
  if (total <= 0) return Fail(kErrAudioEmpty, "audio contains no samples");

  whisper_full_params params =
      whisper_full_default_params(options_.beam_search ? WHISPER_SAMPLING_BEAM_SEARCH : WHISPER_SAMPLING_GREEDY);
  params.n_threads = options_.threads;
  params.translate = options_.translate;
  params.no_context = !options_.condition_on_previous_text;
  params.print_progress = false;
  params.print_realtime = false;
  params.print_timestamps = false;
  params.print_special = false;
  params.token_timestamps = options_.token_timestamps || options_.words;
  params.max_len = options_.max_segment_chars;
  params.split_on_word = options_.split_on_word;
  params.audio_ctx = options_.audio_ctx;
  params.initial_prompt = options_.initial_prompt.empty() ? nullptr : options_.initial_prompt.c_str();
  params.language = options_.language.c_str();
  params.detect_language = false;
  params.suppress_blank = options_.suppress_blank;
  params.suppress_nst = options_.suppress_non_speech;
  params.temperature = options_.temperature;
  params.temperature_inc = options_.temperature_inc;
  params.entropy_thold = options_.entropy_thold;
  params.logprob_thold = options_.logprob_thold;
  params.no_speech_thold = options_.no_speech_thold;
  params.greedy.best_of = options_.best_of;
  params.beam_search.beam_size = options_.beam_size;
  if (!options_.vad_model.empty()) {
    params.vad = true;
    params.vad_model_path = options_.vad_model.c_str();
    params.vad_params = whisper_vad_default_params();
    params.vad_params.threshold = options_.vad_threshold;
    params.vad_params.min_speech_duration_ms = options_.vad_min_speech_ms;
    params.vad_params.min_silence_duration_ms = options_.vad_min_silence_ms;
    params.vad_params.speech_pad_ms = options_.vad_speech_pad_ms;
  }
  params.abort_callback = [](void* data) { return static_cast<std::atomic<bool>*>(data)->load(); };
  params.abort_callback_user_data = aborted_.get();
  params.encoder_begin_callback = [](whisper_context*, whisper_state*, void* data) {
    return !static_cast<std::atomic<bool>*>(data)->load();
  };
  params.encoder_begin_callback_user_data = aborted_.get();

  struct ProgressState {
    TranscribeWorker* self;
    const ExecutionProgress* progress;
    int64_t done;    // samples finished before this window
    int64_t window;  // samples in this window
    int64_t total;
  } state{this, &progress, 0, 0, total};
  params.progress_callback = [](whisper_context*, whisper_state*, int percent, void* data) {
    auto* s = static_cast<ProgressState*>(data);
    const double done = static_cast<double>(s->done) + s->window * std::min(percent, 100) / 100.0;
    const double overall = std::floor(100.0 * done / static_cast<double>(s->total));
    if (overall <= s->self->last_percent_) return;
    s->self->last_percent_ = overall;
    const Progress p{overall, static_cast<int64_t>(done * 1000 / kSampleRate)};
    s->progress->Send(&p, 1);
  };
  params.progress_callback_user_data = &state;

  whisper_reset_timings(ctx);
  const bool detect = options_.language == "auto";
  language_ = detect ? "" : options_.language;
  const int64_t window_samples = static_cast<int64_t>(options_.window_seconds * kSampleRate);
  const whisper_token eot = whisper_token_eot(ctx);
  std::vector<float> buffer;
  std::string read_error;

  for (int64_t pos = 0; pos < total;) {
    if (aborted_->load()) return Fail(kErrAborted, "transcription aborted");
    const int64_t n = std::min(window_samples, total - pos);
    const bool last_window = pos + n >= total;
    const float* samples;
    if (fd >= 0) {
      if (!ReadSamples(fd, first + pos, n, &buffer, &read_error)) return Fail(kErrAudioRead, read_error);
      samples = buffer.data();
    } else {
      samples = source_.pcm.data() + pos;
    }
    int64_t n_padded = n;
    if (n < kMinWindowSamples) {
      if (fd < 0) buffer.assign(samples, samples + n);
      buffer.resize(kMinWindowSamples, 0.0f);
      samples = buffer.data();
      n_padded = kMinWindowSamples;
    }
    state.done = pos;
    state.window = n;
    const int rc = whisper_full(ctx, params, samples, static_cast<int>(n_padded));
    windows_++;
    if (aborted_->load()) return Fail(kErrAborted, "transcription aborted");
    if (rc != 0) return Fail(kErrInference, "whisper_full failed with code " + std::to_string(rc));

    if (detect && language_.empty()) {
      const char* found = whisper_lang_str(whisper_full_lang_id(ctx));
      language_ = found != nullptr ? found : "en";
      // Later windows keep the language of the first instead of guessing again.
      params.language = language_.c_str();
    }

    const int n_segments = whisper_full_n_segments(ctx);
    int keep = n_segments;
    int64_t next = pos + n;
    if (!last_window && n_segments > 1) {
      // The last segment may be cut mid-word by the window edge: drop it and start the
      // next window where it began, as whisper itself seeks between its 30 s chunks.
      const int64_t cut = whisper_full_get_segment_t0(ctx, n_segments - 1) * kSamplesPerCentisecond;
      if (cut > n / 2 && cut < n) {
        keep = n_segments - 1;
        next = pos + cut;
      }
    }
    const int64_t offset_ms = pos * 1000 / kSampleRate;
    const int64_t window_end_ms = (pos + n) * 1000 / kSampleRate;
    auto to_ms = [&](int64_t centiseconds) { return std::min(offset_ms + centiseconds * 10, window_end_ms); };
    for (int i = 0; i < keep; i++) {
      SegmentResult seg;
      seg.start_ms = to_ms(whisper_full_get_segment_t0(ctx, i));
      seg.end_ms = to_ms(whisper_full_get_segment_t1(ctx, i));
      seg.text = whisper_full_get_segment_text(ctx, i);
      seg.no_speech_prob = whisper_full_get_segment_no_speech_prob(ctx, i);
      seg.speaker_turn_next = whisper_full_get_segment_speaker_turn_next(ctx, i);
      const int n_tokens = whisper_full_n_tokens(ctx, i);
      for (int k = 0; k < n_tokens; k++) {
        const whisper_token_data data = whisper_full_get_token_data(ctx, i, k);
        if (data.id >= eot) continue;  // special and timestamp tokens
        const bool timed = params.token_timestamps && data.t0 >= 0 && data.t1 >= 0;
        seg.tokens.push_back({data.id, whisper_full_get_token_text(ctx, i, k), data.p, data.plog,
                              timed ? to_ms(data.t0) : -1, timed ? to_ms(data.t1) : -1});
      }
      if (params.vad && !seg.tokens.empty() && seg.tokens.front().start_ms >= 0) {
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
      if (options_.words) seg.words = GroupWords(seg.tokens);
      segments_.push_back(std::move(seg));
    }
    pos = next;
  }

  {
    LogCapture capture(/*forward=*/false);
    whisper_print_timings(ctx);
    timings_ = ParseTimings(capture.lines());
  }
  timings_.total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
}

void TranscribeWorker::OnProgress(const Progress* data, size_t count) {
  if (on_progress_.IsEmpty() || count == 0) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Object p = Napi::Object::New(env);
  p.Set("percent", data[count - 1].percent);
  p.Set("processedMs", static_cast<double>(data[count - 1].processed_ms));
  on_progress_.Call({p});
}

void TranscribeWorker::OnOK() {
  Napi::Env env = Env();
  model_->Release();
  Napi::Object result = Napi::Object::New(env);
  Napi::Array segments = Napi::Array::New(env, segments_.size());
  for (size_t i = 0; i < segments_.size(); i++) {
    const SegmentResult& s = segments_[i];
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
    segments.Set(i, seg);
  }
  result.Set("segments", segments);
  result.Set("language", language_);
  result.Set("durationMs", static_cast<double>(duration_ms_));
  result.Set("windows", windows_);
  Napi::Object timings = Napi::Object::New(env);
  timings.Set("melMs", timings_.mel_ms);
  timings.Set("sampleMs", timings_.sample_ms);
  timings.Set("encodeMs", timings_.encode_ms);
  timings.Set("decodeMs", timings_.decode_ms);
  timings.Set("batchdMs", timings_.batchd_ms);
  timings.Set("promptMs", timings_.prompt_ms);
  timings.Set("totalMs", timings_.total_ms);
  timings.Set("encodeRuns", timings_.encode_runs);
  timings.Set("decodeRuns", timings_.decode_runs);
  timings.Set("fallbacks", timings_.fallbacks);
  result.Set("timings", timings);
  deferred_.Resolve(result);
}

void TranscribeWorker::OnError(const Napi::Error& /*error*/) {
  model_->Release();
  deferred_.Reject(MakeError(Env(), failure_.code, failure_.message).Value());
}

}  // namespace earshot
