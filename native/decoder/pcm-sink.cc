#include "pcm-sink.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "failure.h"
#include "options.h"

namespace earshot::decode {
namespace {

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EFBIG) Fail(Exit::kTooLong, "the decoded audio exceeded the output size limit");
    if (n <= 0) Fail(Exit::kIo, Format("cannot write the output: %s", strerror(errno)));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

PcmSink::~PcmSink() {
  if (soxr_ != nullptr) soxr_delete(soxr_);
}

void PcmSink::Start(int input_rate) {
  // The limit is judged on the input, where a length is exact; the output may differ by a
  // sample of resampler rounding.
  max_input_frames_ = static_cast<uint64_t>(std::floor(max_seconds_ * input_rate + 1e-6));
  if (input_rate == kOutputRate) return;
  soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  // One thread: soxr would otherwise use OpenMP worker threads, which the sandbox forbids.
  soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  soxr_error_t err = nullptr;
  soxr_ = soxr_create(input_rate, kOutputRate, 1, &err, &io, &quality, &runtime);
  if (err != nullptr || soxr_ == nullptr) {
    Fail(Exit::kInternal, Format("cannot create the resampler: %s", err ? err : "unknown error"));
  }
  resampled_.resize(kBlockFrames * 2 + 64);
}

void PcmSink::Push(const float* frames, size_t count, int channels) {
  mono_.resize(count);
  if (channels == 1) {
    std::copy(frames, frames + count, mono_.begin());
  } else {
    const float scale = 1.0f / static_cast<float>(channels);
    for (size_t i = 0; i < count; i++) {
      float sum = 0;
      for (int c = 0; c < channels; c++) sum += frames[i * static_cast<size_t>(channels) + static_cast<size_t>(c)];
      mono_[i] = sum * scale;
    }
  }
  input_frames_ += count;
  if (input_frames_ > max_input_frames_) {
    Fail(Exit::kTooLong, Format("the audio is longer than the limit of %.3f s", max_seconds_));
  }
  if (soxr_ == nullptr) {
    Emit(mono_.data(), count);
    return;
  }
  size_t offset = 0;
  while (offset < count) {
    size_t used = 0, produced = 0;
    soxr_error_t err = soxr_process(soxr_, mono_.data() + offset, count - offset, &used, resampled_.data(),
                                    resampled_.size(), &produced);
    if (err != nullptr) Fail(Exit::kInternal, Format("resampler failed: %s", err));
    offset += used;
    Emit(resampled_.data(), produced);
    if (used == 0 && produced == 0) Fail(Exit::kInternal, "resampler made no progress");
  }
}

void PcmSink::Finish() {
  if (soxr_ != nullptr) {
    for (;;) {
      size_t produced = 0;
      soxr_error_t err = soxr_process(soxr_, nullptr, 0, nullptr, resampled_.data(), resampled_.size(), &produced);
      if (err != nullptr) Fail(Exit::kInternal, Format("resampler failed: %s", err));
      if (produced == 0) break;
      Emit(resampled_.data(), produced);
    }
  }
  Flush();
}

void PcmSink::Emit(float* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    // Float sources may carry NaN/Inf or wild values; the mel spectrogram must not.
    float v = p[i];
    if (!std::isfinite(v)) v = 0;
    out_.push_back(std::clamp(v, -1.0f, 1.0f));
  }
  samples_ += n;
  if (out_.size() >= kBlockFrames * 4) Flush();
}

void PcmSink::Flush() {
  if (!out_.empty()) WriteAll(fd_, out_.data(), out_.size() * sizeof(float));
  out_.clear();
}

void CheckRateAndChannels(int rate, int channels) {
  if (channels <= 0 || channels > 1024) Fail(Exit::kCorrupt, Format("the header declares an impossible channel count (%d)", channels));
  if (channels > kMaxChannels) Fail(Exit::kUnsupported, Format("the audio has %d channels; at most %d are supported", channels, kMaxChannels));
  if (rate < kMinRate || rate > kMaxRate) {
    Fail(Exit::kCorrupt, Format("the header declares an implausible sample rate (%d Hz; expected %d to %d)", rate, kMinRate, kMaxRate));
  }
}

void CheckDeclaredLength(double seconds, double max_seconds) {
  if (seconds > max_seconds) {
    Fail(Exit::kTooLong, Format("the audio is %.3f s long, more than the limit of %.3f s", seconds, max_seconds));
  }
}

}  // namespace earshot::decode
