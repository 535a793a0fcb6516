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
#include <cstring>
#include <thread>
#include <vector>

#include "log-bridge.h"
#include "whisper.h"

namespace earshot {
namespace {

constexpr int kSampleRate = WHISPER_SAMPLE_RATE;
constexpr int64_t kSamplesPerCentisecond = kSampleRate / 100;
// whisper_full ignores input shorter than 100 ms; short tails are padded with silence.
constexpr int64_t kMinWindowSamples = kSampleRate;
// How much lower than the interactive lane the batch lane runs. whisper.cpp 1.9.1 asks the
// abort callback only between graph runs (one encoder run of a 30 s chunk, one decoder
// step), so the batch lane finishes the run it is in before it pauses; at 5 nice levels
// below, it takes about a quarter of the CPU from an interactive transcription meanwhile
// instead of half. Alone on the CPU it runs as fast as before.
constexpr int kBatchLaneExtraNice = 5;
// whisper's encoder: 30 s of audio in 1500 positions (two mel frames of 10 ms each).
constexpr int64_t kSamplesPerEncoderPosition = kSampleRate / 50;

// The encoder context for a window of `samples` with trimming: whisper pads every window to
// 30 s, so a 3 s command costs the encoder as much as 30 s of audio. Sized to the window
// plus a margin instead (the decoder may look a little past the last word), rounded up,
// never above the model's own context. Timestamps keep their meaning: whisper counts them in
// 20 ms steps from the window's start whatever the context, and only encodes less padding.
int TrimmedAudioCtx(int64_t samples, int margin_ms, int model_ctx) {
  const int64_t margin = static_cast<int64_t>(margin_ms) * kSampleRate / 1000;
  const int64_t positions = (samples + margin + kSamplesPerEncoderPosition - 1) / kSamplesPerEncoderPosition;
  return static_cast<int>(std::min<int64_t>(positions, model_ctx));
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

// Reads exactly `bytes` from a blocking descriptor (a pipe); false at an early end.
bool ReadFull(int fd, char* dst, size_t bytes, std::string* error) {
  while (bytes > 0) {
    const ssize_t n = read(fd, dst, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = n == 0 ? "the decoded audio stream ended early" : std::string("reading the decoded audio: ") + std::strerror(errno);
      return false;
    }
    dst += n;
    bytes -= static_cast<size_t>(n);
  }
  return true;
}

// The windows of a stream of float32 samples (a pipe from the decoder), read in order: the
// samples from where the next window starts (a window's cut point) to its end are kept in
// memory, nothing before them, so memory is a window's worth whatever the audio's length.
class StreamWindows {
 public:
  explicit StreamWindows(int fd) : fd_(fd) {}

  // The samples [pos, pos + n); `pos` never goes back before the previous window's start.
  bool Window(int64_t pos, int64_t n, const float** out, std::string* error) {
    const auto drop = static_cast<size_t>(std::clamp<int64_t>(pos - start_, 0, static_cast<int64_t>(buf_.size())));
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(drop));
    start_ += static_cast<int64_t>(drop);
    const size_t have = buf_.size();
    if (have < static_cast<size_t>(n)) {
      buf_.resize(static_cast<size_t>(n));
      if (!ReadFull(fd_, reinterpret_cast<char*>(buf_.data() + have), (static_cast<size_t>(n) - have) * sizeof(float), error)) {
        return false;
      }
    }
    *out = buf_.data();
    return true;
  }

 private:
  int fd_;
  int64_t start_ = 0;  // the sample buf_[0] is
  std::vector<float> buf_;
};

// The part of `samples` between the start of the first stretch of speech and the end of
// the last one, as Silero VAD finds them ([0, 0) when there is none); false when VAD fails.
bool FindSpeech(whisper_vad_context* vad, const whisper_vad_params& params, const float* samples, int64_t n,
                int64_t* begin, int64_t* end) {
  whisper_vad_segments* segments = whisper_vad_segments_from_samples(vad, params, samples, static_cast<int>(n));
  if (segments == nullptr) return false;
  const int count = whisper_vad_segments_n_segments(segments);
  *begin = 0;
  *end = 0;
  if (count > 0) {
    // Segment times are in centiseconds (speech_pad_ms already applied).
    *begin = std::clamp<int64_t>(std::llround(whisper_vad_segments_get_segment_t0(segments, 0) * kSamplesPerCentisecond), 0, n);
    *end = std::clamp<int64_t>(std::llround(whisper_vad_segments_get_segment_t1(segments, count - 1) * kSamplesPerCentisecond), *begin, n);
  }
  whisper_vad_free_segments(segments);
  return true;
}

}  // namespace

TranscribeWorker::TranscribeWorker(Napi::Env env, Model* model, Napi::Object model_object, AudioSource source,
                                   TranscribeOptions options, Napi::Function on_progress, Napi::Function on_segment)
    : Napi::AsyncProgressQueueWorker<Progress>(env, "earshot:transcribe"),
      model_(model),
      lane_(options.interactive ? Lane::kInteractive : Lane::kBatch),
      model_ref_(Napi::Persistent(model_object)),
      deferred_(Napi::Promise::Deferred::New(env)),
      aborted_(std::make_shared<std::atomic<bool>>(false)),
      stream_segments_(!on_segment.IsEmpty()),
      source_(std::move(source)),
      options_(std::move(options)) {
  if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
  if (!on_segment.IsEmpty()) on_segment_ = Napi::Persistent(on_segment);
}

Napi::Value TranscribeWorker::Start(Model* model, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AudioSource source = ReadSource(info[0]);
  Napi::Object options_object = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  TranscribeOptions options = ReadOptions(options_object);
  Napi::Function on_progress;
  if (info.Length() > 2 && info[2].IsFunction()) on_progress = info[2].As<Napi::Function>();
  Napi::Function on_segment;
  if (info.Length() > 3 && info[3].IsFunction()) on_segment = info[3].As<Napi::Function>();

  Napi::Object task = Napi::Object::New(env);
  auto rejected = [&](const char* code, const char* message) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(MakeError(env, code, message).Value());
    task.Set("promise", deferred.Promise());
    task.Set("abort", Napi::Function::New(env, [](const Napi::CallbackInfo&) {}));
    return task;
  };
  if (model->context() == nullptr) return rejected(kErrModelFreed, "model is not loaded (or was freed)");
  const Lane lane = options.interactive ? Lane::kInteractive : Lane::kBatch;
  if (!model->TryClaim(lane)) {
    return rejected(kErrModelBusy, options.interactive ? "model is busy with another interactive transcription"
                                                       : "model is busy with another transcription");
  }

  auto* worker = new TranscribeWorker(env, model, info.This().As<Napi::Object>(), std::move(source),
                                      std::move(options), on_progress, on_segment);
  task.Set("promise", worker->deferred_.Promise());
  auto aborted = worker->aborted_;
  auto pause = model->batch_pause();
  task.Set("abort", Napi::Function::New(env, [aborted, pause](const Napi::CallbackInfo& i) {
             aborted->store(true);
             pause->Wake();  // a paused batch transcription stops waiting and aborts
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
  LowerPriority(lane_ == Lane::kInteractive ? options_.nice : options_.nice + kBatchLaneExtraNice);
  whisper_context* ctx = model_->context();

  int fd = -1;
  int64_t first = 0;
  int64_t total = static_cast<int64_t>(source_.pcm.size());
  if (!source_.path.empty()) {
    fd = open(source_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(kErrAudioRead, "cannot open audio " + source_.path + ": " + std::strerror(errno));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { if (fd >= 0) close(fd); }
  } closer{fd};
  if (fd >= 0) {
    struct stat st {};
    if (fstat(fd, &st) != 0) return Fail(kErrAudioRead, "cannot stat audio " + source_.path + ": " + std::strerror(errno));
    const int64_t in_file = static_cast<int64_t>(st.st_size) / static_cast<int64_t>(sizeof(float));
    first = std::min(source_.offset, in_file);
    total = in_file - first;
    if (source_.length >= 0) total = std::min(total, source_.length);
  }
  // A stream is read window by window as the decoder writes it; its length is known (the
  // service decoded the upload once to check it) and closing it early tells the decoder.
  const int stream_fd = source_.stream.get();
  if (stream_fd >= 0) total = source_.length;
  struct StreamCloser {
    OwnedFd* fd;
    ~StreamCloser() { fd->Close(); }
  } stream_closer{&source_.stream};
  StreamWindows stream(stream_fd);
  result_.duration_ms = total * 1000 / kSampleRate;
  if (total <= 0) return Fail(kErrAudioEmpty, "audio contains no samples");

  const bool interactive = lane_ == Lane::kInteractive;
  whisper_state* lane_state = nullptr;  // the context's own (batch lane)
  if (interactive) {
    lane_state = model_->interactive_state();
    if (lane_state == nullptr) {
      // Made on first use and kept: its buffers (KV caches, compute buffers) are the price
      // of an interactive lane, paid only by services that get interactive requests.
      LogCapture capture;
      lane_state = whisper_init_state(ctx);
      if (lane_state == nullptr) {
        const std::string why = capture.Problems();
        return Fail(kErrInference, "cannot allocate a whisper state for interactive transcription" +
                                       (why.empty() ? "" : ": " + why));
      }
      model_->set_interactive_state(lane_state);
    }
  }

  // whisper asks the abort callback after every node of its compute graphs and the
  // encoder-begin callback before each 30 s chunk: the batch lane pauses in both while an
  // interactive transcription runs (pause is null on the interactive lane).
  struct Interruption {
    std::atomic<bool>* aborted;
    BatchPause* pause;
    bool Aborted() const {
      if (pause != nullptr) pause->WaitWhileInteractive(*aborted);
      return aborted->load();
    }
  } interruption{aborted_.get(), interactive ? nullptr : model_->batch_pause().get()};
  whisper_full_params params = MakeParams(options_);
  params.abort_callback = [](void* data) { return static_cast<Interruption*>(data)->Aborted(); };
  params.abort_callback_user_data = &interruption;
  params.encoder_begin_callback = [](whisper_context*, whisper_state*, void* data) {
    return !static_cast<Interruption*>(data)->Aborted();
  };
  params.encoder_begin_callback_user_data = &interruption;

  // whisper calls progress_callback before each 30 s chunk it encodes (and once more at the
  // end of a window): every call is reported, so the service sees progress at least once
  // per chunk, whatever the audio's length (an integer percent of a 4 h file is 144 s of
  // audio). The position never goes back, although a window after the first re-reads
  // the segment its predecessor dropped.
  struct ProgressState {
    const ExecutionProgress* progress;
    int64_t done;     // samples finished before this window
    int64_t window;   // samples in this window
    int64_t total;
    int64_t reached;  // the furthest sample reported so far
    void Report(int64_t at) {
      reached = std::max(reached, std::min(at, total));
      const Progress p{100.0 * static_cast<double>(reached) / static_cast<double>(total), reached * 1000 / kSampleRate};
      progress->Send(&p, 1);
    }
  } state{&progress, 0, 0, total, 0};
  params.progress_callback = [](whisper_context*, whisper_state*, int percent, void* data) {
    auto* s = static_cast<ProgressState*>(data);
    s->Report(s->done + s->window * std::clamp(percent, 0, 100) / 100);
  };
  params.progress_callback_user_data = &state;

  // Segments as whisper produces them (new_segment_callback: after each 30 s chunk it
  // decoded), sent as soon as they are final: exactly the segments the window loop below
  // keeps, in order, read the same way. Only the last segment of a window that is not the
  // audio's last may be dropped (the next window starts where it began): a segment that
  // would be dropped were it the last is held until a later one arrives or the window ends.
  struct SegmentStream {
    const ExecutionProgress* progress;
    whisper_context* ctx;
    whisper_state* state;  // null: the context's own
    SegmentDetail detail{};
    WindowSpan span{};
    int64_t n = 0;             // samples in the window
    int64_t speech_begin = 0;  // where whisper's input starts in it
    bool last_window = false;
    int sent = 0;  // segments of this window sent so far

    // The window loop's rule: the window's last segment is dropped when it starts in the
    // second half of a window that is not the last (and is not its only segment).
    bool Droppable(int i) const {
      if (last_window || i == 0) return false;
      const int64_t t0 = state ? whisper_full_get_segment_t0_from_state(state, i) : whisper_full_get_segment_t0(ctx, i);
      const int64_t cut = speech_begin + t0 * kSamplesPerCentisecond;
      return cut > n / 2 && cut < n;
    }
    void SendUpTo(int end) {
      if (end <= sent) return;
      Progress p{0, 0, {}};
      AppendSegments(ctx, state, sent, end, span, detail, &p.segments);
      sent = end;
      progress->Send(&p, 1);
    }
    void Produced() {
      const int count = state ? whisper_full_n_segments_from_state(state) : whisper_full_n_segments(ctx);
      SendUpTo(count > 0 && Droppable(count - 1) ? count - 1 : count);
    }
  } segments{&progress, ctx, nullptr};
  if (stream_segments_) {
    params.new_segment_callback = [](whisper_context*, whisper_state*, int, void* data) {
      static_cast<SegmentStream*>(data)->Produced();
    };
    params.new_segment_callback_user_data = &segments;
  }

  // The batch lane waits while this runs, from its next callback on (within one graph node).
  struct InteractiveRun {
    BatchPause* pause;
    explicit InteractiveRun(BatchPause* p) : pause(p) { if (pause) pause->BeginInteractive(); }
    ~InteractiveRun() { if (pause) pause->EndInteractive(); }
  } interactive_run(interactive ? model_->batch_pause().get() : nullptr);

  // whisper runs VAD in whisper_full only, not in whisper_full_with_state, which the
  // interactive lane needs for its own state: there VAD would silently do nothing. The
  // interactive lane trims the silence before the first and after the last speech itself
  // (what matters for a voice command; silence between words stays), and the windows are
  // transcribed from the first speech on, their timestamps offset accordingly.
  struct VadContext {
    whisper_vad_context* vad = nullptr;
    ~VadContext() { if (vad != nullptr) whisper_vad_free(vad); }
  } interactive_vad;
  if (interactive && params.vad) {
    params.vad = false;
    whisper_vad_context_params vad_params = whisper_vad_default_context_params();
    vad_params.n_threads = options_.threads;
    LogCapture capture;
    // Loaded per transcription: Silero's model is under 1 MB, read in a few milliseconds.
    interactive_vad.vad = whisper_vad_init_from_file_with_params(options_.vad_model.c_str(), vad_params);
    if (interactive_vad.vad == nullptr) {
      const std::string why = capture.Problems();
      return Fail(kErrInference, "cannot load the VAD model " + options_.vad_model + (why.empty() ? "" : ": " + why));
    }
  }

  // whisper keeps timings for the context's own state only (the batch lane's).
  if (!interactive) whisper_reset_timings(ctx);
  const bool detect = options_.language == "auto";
  result_.language = detect ? "" : options_.language;
  const int64_t window_samples = static_cast<int64_t>(options_.window_seconds * kSampleRate);
  const SegmentDetail detail{params.token_timestamps, params.vad, options_.words};
  segments.state = lane_state;
  segments.detail = detail;
  std::vector<float> buffer;
  std::string read_error;

  // whisper keeps the text it decoded in its state and, unless no_context, conditions the
  // next call on it: the windows of one job carry it over, but the first window must not
  // start from whatever the state ran before (another job, on this lane), or a transcript
  // would depend on its predecessor rather than on its own audio.
  params.no_context = true;
  for (int64_t pos = 0; pos < total;) {
    // Also a pause point: whisper's mel spectrogram of a whole window, at the start of
    // whisper_full, has no callback, so a new window waits while an interactive one runs.
    if (interruption.Aborted()) return Fail(kErrAborted, "transcription aborted");
    const int64_t n = std::min(window_samples, total - pos);
    const bool last_window = pos + n >= total;
    const float* samples;
    if (stream_fd >= 0) {
      // The decoder is killed when the transcription is aborted: the stream then ends early.
      if (!stream.Window(pos, n, &samples, &read_error)) {
        return aborted_->load() ? Fail(kErrAborted, "transcription aborted") : Fail(kErrAudioRead, read_error);
      }
    } else if (fd >= 0) {
      if (!ReadSamples(fd, first + pos, n, &buffer, &read_error)) return Fail(kErrAudioRead, read_error);
      samples = buffer.data();
    } else {
      samples = source_.pcm.data() + pos;
    }
    state.done = pos;
    state.window = n;
    // What whisper gets of this window: [speech_begin, speech_end), all of it unless the
    // interactive lane's VAD trimmed silence off its ends.
    int64_t speech_begin = 0;
    int64_t speech_end = n;
    if (interactive_vad.vad != nullptr) {
      if (!FindSpeech(interactive_vad.vad, params.vad_params, samples, n, &speech_begin, &speech_end)) {
        return Fail(kErrInference, "VAD failed on the audio");
      }
      if (speech_end <= speech_begin) {  // no speech: no segments, as whisper_full's VAD gives
        result_.windows++;
        pos += n;
        continue;
      }
      samples += speech_begin;
    }
    int64_t n_input = speech_end - speech_begin;
    std::vector<float> padded;
    if (n_input < kMinWindowSamples) {
      padded.assign(samples, samples + n_input);
      padded.resize(kMinWindowSamples, 0.0f);
      samples = padded.data();
      n_input = kMinWindowSamples;
    }
    const int model_ctx = whisper_n_audio_ctx(ctx);
    if (options_.audio_ctx == 0 && options_.trim_encoder && n_input < static_cast<int64_t>(WHISPER_CHUNK_SIZE) * kSampleRate) {
      params.audio_ctx = TrimmedAudioCtx(n_input, options_.trim_margin_ms, model_ctx);
    } else {
      params.audio_ctx = options_.audio_ctx;
    }
    result_.audio_ctx = params.audio_ctx > 0 ? params.audio_ctx : model_ctx;
    const WindowSpan span{(pos + speech_begin) * 1000 / kSampleRate, (pos + speech_end) * 1000 / kSampleRate};
    segments.span = span;
    segments.n = n;
    segments.speech_begin = speech_begin;
    segments.last_window = last_window;
    segments.sent = 0;
    const int rc = interactive ? whisper_full_with_state(ctx, lane_state, params, samples, static_cast<int>(n_input))
                               : whisper_full(ctx, params, samples, static_cast<int>(n_input));
    result_.windows++;
    params.no_context = !options_.condition_on_previous_text;
    if (aborted_->load()) return Fail(kErrAborted, "transcription aborted");
    if (rc != 0) return Fail(kErrInference, "whisper_full failed with code " + std::to_string(rc));

    if (detect && result_.language.empty()) {
      const char* found =
          whisper_lang_str(interactive ? whisper_full_lang_id_from_state(lane_state) : whisper_full_lang_id(ctx));
      result_.language = found != nullptr ? found : "en";
      // Later windows keep the language of the first instead of guessing again.
      params.language = result_.language.c_str();
    }

    const int n_segments = interactive ? whisper_full_n_segments_from_state(lane_state) : whisper_full_n_segments(ctx);
    int keep = n_segments;
    int64_t next = pos + n;
    if (!last_window && n_segments > 1) {
      // The last segment may be cut mid-word by the window edge: drop it and start the
      // next window where it began, as whisper itself seeks between its 30 s chunks.
      const int64_t cut = speech_begin + (interactive ? whisper_full_get_segment_t0_from_state(lane_state, n_segments - 1)
                                                      : whisper_full_get_segment_t0(ctx, n_segments - 1)) *
                                             kSamplesPerCentisecond;
      if (cut > n / 2 && cut < n) {
        keep = n_segments - 1;
        next = pos + cut;
      }
    }
    AppendSegments(ctx, lane_state, 0, keep, span, detail, &result_.segments);
    if (stream_segments_) segments.SendUpTo(keep);
    pos = next;
  }
  state.Report(total);
  // No window had speech (the interactive lane's VAD): whisper_full's VAD says "en" then too.
  if (detect && result_.language.empty()) result_.language = "en";

  if (!interactive) result_.timings = ReadTimings(ctx);
  result_.timings.total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
}

void TranscribeWorker::OnProgress(const Progress* data, size_t count) {
  if (count == 0) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // Each report is sent on its own (count 1), so their order is whisper's.
  for (size_t i = 0; i < count; i++) {
    if (!data[i].segments.empty()) {
      if (on_segment_.IsEmpty()) continue;
      for (const auto& segment : data[i].segments) on_segment_.Call({SegmentToJs(env, segment)});
    } else if (!on_progress_.IsEmpty()) {
      on_progress_.Call({ProgressToJs(env, data[i])});
    }
  }
}

void TranscribeWorker::OnOK() {
  model_->Release(lane_);
  deferred_.Resolve(ResultToJs(Env(), result_));
}

void TranscribeWorker::OnError(const Napi::Error& /*error*/) {
  model_->Release(lane_);
  deferred_.Reject(MakeError(Env(), failure_.code, failure_.message).Value());
}

}  // namespace earshot
