#include "mpg123-path.h"

#include <mpg123.h>

#include <vector>

#include "failure.h"
#include "integrity.h"

namespace earshot::decode {

Decoded DecodeWithMpg123(const Input& in, const Options& o, int64_t start, PcmSink& sink) {
  MpegScan scan = ScanMpeg(in, start);
  if (scan.truncated) Fail(Exit::kCorrupt, "the MPEG audio stream is cut off in the middle of a frame: it is truncated");
  if (scan.complete && scan.frames < scan.tag_frames) {
    Fail(Exit::kCorrupt, Format("the MPEG stream has %llu of the %llu frames its Xing/Info/VBRI header declares: it is truncated",
                                static_cast<unsigned long long>(scan.frames), static_cast<unsigned long long>(scan.tag_frames)));
  }
  CheckRateAndChannels(scan.first.rate, scan.first.channels);
  CheckDeclaredLength(static_cast<double>(scan.samples) / scan.first.rate, o.max_seconds);

  int err = MPG123_OK;
  mpg123_handle* mh = mpg123_new(nullptr, &err);
  if (mh == nullptr) Fail(Exit::kInternal, Format("cannot create the MPEG decoder: %s", mpg123_plain_strerror(err)));
  struct Closer {
    mpg123_handle* h;
    ~Closer() { mpg123_delete(h); }
  } closer{mh};
  // Quiet: stdout carries our JSON; gapless: the encoder's padding is not audio.
  mpg123_param(mh, MPG123_FLAGS, MPG123_GAPLESS | MPG123_QUIET, 0);
  mpg123_format_none(mh);
  const long* rates = nullptr;
  size_t rate_count = 0;
  mpg123_rates(&rates, &rate_count);
  for (size_t i = 0; i < rate_count; i++) mpg123_format(mh, rates[i], MPG123_MONO | MPG123_STEREO, MPG123_ENC_FLOAT_32);
  if (mpg123_open_fd(mh, in.fd()) != MPG123_OK) Fail(Exit::kCorrupt, Format("cannot open the MPEG stream: %s", mpg123_strerror(mh)));

  Decoded d;
  d.container = "mp3";
  d.codec = scan.first.layer == 3 ? "mp3" : scan.first.layer == 2 ? "mp2" : "mp1";
  std::vector<float> block(kBlockFrames * 2);
  bool started = false;
  for (;;) {
    size_t bytes = 0;
    int r = mpg123_read(mh, block.data(), block.size() * sizeof(float), &bytes);
    if (r == MPG123_NEW_FORMAT) {
      long rate = 0;
      int channels = 0, encoding = 0;
      mpg123_getformat(mh, &rate, &channels, &encoding);
      if (started && (rate != d.rate || channels != d.channels)) {
        Fail(Exit::kCorrupt, "the MPEG stream changes its sample rate or channel count midway");
      }
      if (!started) {
        CheckRateAndChannels(static_cast<int>(rate), channels);
        d.rate = static_cast<int>(rate);
        d.channels = channels;
        sink.Start(d.rate);
        started = true;
      }
      continue;
    }
    if (r != MPG123_OK && r != MPG123_DONE) {
      Fail(Exit::kCorrupt, Format("the MPEG audio cannot be decoded after %.3f s: %s",
                                          d.rate ? static_cast<double>(sink.input_frames()) / d.rate : 0.0, mpg123_strerror(mh)));
    }
    if (bytes > 0) {
      if (!started) Fail(Exit::kInternal, "libmpg123 returned audio before its format");
      sink.Push(block.data(), bytes / sizeof(float) / static_cast<size_t>(d.channels), d.channels);
    }
    if (r == MPG123_DONE) break;
  }
  if (!started) Fail(Exit::kEmpty, "the MPEG stream contains no audio frames");
  sink.Finish();
  return d;
}

}  // namespace earshot::decode
