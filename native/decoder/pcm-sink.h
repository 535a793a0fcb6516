// The output side of decoding: downmix → resample → sanitize → write, as 16 kHz mono
// float32 little-endian PCM, and the checks both decoding paths apply to what a header
// declares.
#ifndef EARSHOT_DECODE_PCM_SINK_H_
#define EARSHOT_DECODE_PCM_SINK_H_

#include <soxr.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace earshot::decode {

// Frames per read from a codec library; the sink's buffers are sized from it.
constexpr size_t kBlockFrames = 4096;

// Streams decoded audio to the output descriptor through fixed-size buffers, so memory does
// not grow with the length of the audio. Fails with Exit::kTooLong once the input passes
// max_seconds, Exit::kIo when the output cannot be written.
class PcmSink {
 public:
  PcmSink(int fd, double max_seconds) : fd_(fd), max_seconds_(max_seconds) {}
  ~PcmSink();
  PcmSink(const PcmSink&) = delete;
  PcmSink& operator=(const PcmSink&) = delete;

  // Before the first Push: the input's sample rate (a resampler when it is not 16 kHz).
  void Start(int input_rate);
  // Takes interleaved frames at the input rate.
  void Push(const float* frames, size_t count, int channels);
  // Drains the resampler and writes what is buffered.
  void Finish();

  uint64_t samples() const { return samples_; }
  uint64_t input_frames() const { return input_frames_; }

 private:
  void Emit(float* p, size_t n);
  void Flush();

  int fd_;
  double max_seconds_;
  uint64_t max_input_frames_ = 0;
  soxr_t soxr_ = nullptr;
  std::vector<float> mono_, resampled_, out_;
  uint64_t samples_ = 0;
  uint64_t input_frames_ = 0;
};

// What a decoding path found, for the report.
struct Decoded {
  int rate = 0;
  int channels = 0;
  std::string container;
  std::string codec;
};

// Fails with Exit::kCorrupt (impossible values) or Exit::kUnsupported (too many channels).
void CheckRateAndChannels(int rate, int channels);

// Fails with Exit::kTooLong when a declared length is over the limit, before decoding.
void CheckDeclaredLength(double seconds, double max_seconds);

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_PCM_SINK_H_
