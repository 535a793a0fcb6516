#include "sndfile-path.h"

#include <sndfile.h>

#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "failure.h"

namespace earshot::decode {
namespace {

const char* CodecName(int format) {
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8: return "pcm_s8";
    case SF_FORMAT_PCM_U8: return "pcm_u8";
    case SF_FORMAT_PCM_16: return "pcm_s16";
    case SF_FORMAT_PCM_24: return "pcm_s24";
    case SF_FORMAT_PCM_32: return "pcm_s32";
    case SF_FORMAT_FLOAT: return "float32";
    case SF_FORMAT_DOUBLE: return "float64";
    case SF_FORMAT_ULAW: return "mulaw";
    case SF_FORMAT_ALAW: return "alaw";
    case SF_FORMAT_IMA_ADPCM: return "ima_adpcm";
    case SF_FORMAT_MS_ADPCM: return "ms_adpcm";
    case SF_FORMAT_GSM610: return "gsm610";
    case SF_FORMAT_G721_32: return "g721";
    case SF_FORMAT_G723_24:
    case SF_FORMAT_G723_40: return "g723";
    case SF_FORMAT_VORBIS: return "vorbis";
    case SF_FORMAT_OPUS: return "opus";
    default: return "other";
  }
}

bool MajorMatches(Family family, int format) {
  int major = format & SF_FORMAT_TYPEMASK;
  switch (family) {
    case Family::kWav: return major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX;
    case Family::kRf64: return major == SF_FORMAT_RF64;
    case Family::kAiff: return major == SF_FORMAT_AIFF;
    case Family::kAu: return major == SF_FORMAT_AU;
    case Family::kFlac: return major == SF_FORMAT_FLAC;
    case Family::kOgg: return major == SF_FORMAT_OGG;
    default: return false;
  }
}

// Why libsndfile refused a file whose container we recognised.
[[noreturn]] void FailOpen(int error, const char* text) {
  std::string lower = text;
  for (char& ch : lower) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
  bool unsupported = error == SF_ERR_UNRECOGNISED_FORMAT || error == SF_ERR_UNSUPPORTED_ENCODING ||
                     lower.find("unimplemented") != std::string::npos || lower.find("not supported") != std::string::npos ||
                     lower.find("unsupported") != std::string::npos || lower.find("not yet") != std::string::npos;
  if (unsupported) Fail(Exit::kUnsupported, std::string("the audio uses an encoding that cannot be decoded: ") + text);
  if (error == SF_ERR_SYSTEM) Fail(Exit::kIo, std::string("cannot read the input: ") + text);
  Fail(Exit::kCorrupt, std::string("the audio is malformed: ") + text);
}

// Byte order of headerless 16-bit PCM, guessed the way a listener would: real audio is
// smooth, so consecutive samples differ far less in the right interpretation than in the
// byte-swapped one, where the low byte turns into loud noise.
Endian DetectL16Endian(const Input& in, int channels) {
  std::vector<uint8_t> b(65536);
  size_t n = in.ReadAt(0, b.data(), b.size()) & ~size_t{1};
  size_t samples = n / 2, stride = static_cast<size_t>(channels);
  uint64_t le = 0, be = 0;
  for (size_t i = stride; i < samples; i++) {
    auto sample = [&](size_t k, bool little) {
      uint16_t u = little ? uint16_t(b[2 * k] | b[2 * k + 1] << 8) : uint16_t(b[2 * k] << 8 | b[2 * k + 1]);
      return static_cast<int64_t>(static_cast<int16_t>(u));
    };
    le += static_cast<uint64_t>(std::llabs(sample(i, true) - sample(i - stride, true)));
    be += static_cast<uint64_t>(std::llabs(sample(i, false) - sample(i - stride, false)));
  }
  return be < le ? Endian::kBig : Endian::kLittle;  // ties (silence): little, the common case
}

}  // namespace

Decoded DecodeWithSndfile(const Input& in, const Options& o, Family family, PcmSink& sink) {
  SF_INFO info{};
  Decoded d;
  const bool raw = family == Family::kUnknown;
  if (raw) {
    int subtype = o.format == InputFormat::kL16 ? SF_FORMAT_PCM_16 : o.format == InputFormat::kAlaw ? SF_FORMAT_ALAW : SF_FORMAT_ULAW;
    int rate = o.format == InputFormat::kBasic ? 8000 : o.rate;
    int channels = o.format == InputFormat::kBasic ? 1 : o.channels;
    int endian = 0;
    if (o.format == InputFormat::kL16) {
      Endian e = o.endian == Endian::kAuto ? DetectL16Endian(in, channels) : o.endian;
      endian = e == Endian::kBig ? SF_ENDIAN_BIG : SF_ENDIAN_LITTLE;
      d.codec = e == Endian::kBig ? "pcm_s16be" : "pcm_s16le";
    } else {
      d.codec = subtype == SF_FORMAT_ALAW ? "alaw" : "mulaw";
    }
    int frame_bytes = (subtype == SF_FORMAT_PCM_16 ? 2 : 1) * channels;
    if (in.size() % frame_bytes != 0) {
      Fail(Exit::kCorrupt, Format("the raw audio is %lld bytes, not a whole number of %d-byte frames: it is truncated or "
                                  "its channels parameter is wrong", static_cast<long long>(in.size()), frame_bytes));
    }
    info.format = SF_FORMAT_RAW | subtype | endian;
    info.samplerate = rate;
    info.channels = channels;
    d.container = "raw";
  }

  SNDFILE* snd = sf_open_fd(in.fd(), SFM_READ, &info, SF_FALSE);
  if (snd == nullptr) FailOpen(sf_error(nullptr), sf_strerror(nullptr));
  struct Closer {
    SNDFILE* s;
    ~Closer() { sf_close(s); }
  } closer{snd};

  if (!raw) {
    if (!MajorMatches(family, info.format)) {
      Fail(Exit::kCorrupt, Format("the data starts like %s but does not parse as one", FamilyName(family)));
    }
    d.container = FamilyName(family);
    d.codec = (info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_FLAC ? "flac" : CodecName(info.format);
    if (!o.codec.empty() && d.codec != o.codec) {
      Fail(Exit::kUnsupported, Format("the Ogg stream is %s, not %s as its Content-Type says", d.codec.c_str(), o.codec.c_str()));
    }
  }
  CheckRateAndChannels(info.samplerate, info.channels);
  d.rate = info.samplerate;
  d.channels = info.channels;

  // Every container here states its length exactly when it states it at all (Ogg through
  // its last granule position, FLAC in STREAMINFO, the rest through data sizes).
  const bool length_known = info.frames > 0 && info.frames != SF_COUNT_MAX;
  if (length_known) CheckDeclaredLength(static_cast<double>(info.frames) / info.samplerate, o.max_seconds);

  sink.Start(info.samplerate);
  std::vector<float> block(kBlockFrames * static_cast<size_t>(info.channels));
  for (;;) {
    sf_count_t n = sf_readf_float(snd, block.data(), kBlockFrames);
    if (sf_error(snd) != SF_ERR_NO_ERROR) {
      Fail(Exit::kCorrupt, Format("the audio cannot be decoded after %.3f s: %s",
                                          static_cast<double>(sink.input_frames()) / info.samplerate, sf_strerror(snd)));
    }
    if (n <= 0) break;
    sink.Push(block.data(), static_cast<size_t>(n), info.channels);
  }
  if (length_known && static_cast<sf_count_t>(sink.input_frames()) < info.frames) {
    Fail(Exit::kCorrupt, Format("the audio ends after %.3f s although its header declares %.3f s: it is truncated",
                                static_cast<double>(sink.input_frames()) / info.samplerate,
                                static_cast<double>(info.frames) / info.samplerate));
  }
  sink.Finish();
  return d;
}

}  // namespace earshot::decode
