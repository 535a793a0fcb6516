// Argument decoding for a transcription: the JavaScript audio and options (types only:
// ranges and friendly messages are src/engine/whisper-engine.ts's job) into plain C++, and
// the options into whisper_full_params.
#ifndef EARSHOT_TRANSCRIBE_OPTIONS_H_
#define EARSHOT_TRANSCRIBE_OPTIONS_H_

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "whisper.h"

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
  // On by default, unlike whisper.cpp: a transcript never contains "[MUSIC]", "(applause)"
  // or "♪" (IBM and Azure transcribe speech only), and a suppressed bracket cannot start one.
  bool suppress_non_speech = true;
  int audio_ctx = 0;  // 0: whisper's full context (1500 positions, 30 s)
  // For a window shorter than 30 s (a voice command): audio_ctx sized to the window plus
  // trim_margin_ms, instead of the 30 s whisper pads every window to (audio_ctx wins when set).
  bool trim_encoder = false;
  int trim_margin_ms = 2000;
  std::string vad_model;  // empty: no VAD
  float vad_threshold = 0.5f;
  int vad_min_speech_ms = 250;
  int vad_min_silence_ms = 100;
  int vad_speech_pad_ms = 30;
  double window_seconds = 300;
  // The interactive lane: a second whisper state, the batch transcription paused meanwhile.
  bool interactive = false;
};

// A descriptor this process owns: closed once, when its owner goes or by Close().
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) {
      Close();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() { Close(); }
  int get() const { return fd_; }
  void Close();

 private:
  int fd_ = -1;
};

// PCM handed over from JavaScript, a window of a spool file of float32 samples, or a
// stream of float32 samples (the read end of a pipe from the decoder) of a known length.
struct AudioSource {
  std::vector<float> pcm;
  std::string path;
  OwnedFd stream;       // owned from ReadSource on: closed however the transcription ends
  int64_t offset = 0;   // samples
  int64_t length = -1;  // samples; -1 = to the end of the file
};

// The options object (undefined members take their defaults). Throws a JS TypeError on a
// wrongly typed member, a RangeError on threads < 1, nice outside 0..19 or windowSeconds < 30.
TranscribeOptions ReadOptions(const Napi::Object& o);

// A Float32Array, {path, offset?, length?} or {fd, length} (the descriptor is owned by the
// result from then on). Throws a JS TypeError on anything else.
AudioSource ReadSource(const Napi::Value& v);

// whisper_full's parameters for these options, without callbacks. The result points into
// `o` (language, initial prompt, VAD model path): `o` must outlive it.
whisper_full_params MakeParams(const TranscribeOptions& o);

}  // namespace earshot

#endif  // EARSHOT_TRANSCRIBE_OPTIONS_H_
