#include "sniff.h"

#include <cstring>

namespace earshot::decode {
namespace {

// Where MPEG audio starts: after any ID3v2 tags; -1 if the data is not an MPEG stream.
int64_t MpegStart(const Input& in) {
  int64_t pos = 0;
  uint8_t b[10];
  bool tagged = false;
  for (int i = 0; i < 8 && in.ReadAt(pos, b, 10) == 10 && memcmp(b, "ID3", 3) == 0; i++) {
    int64_t size = (b[6] & 0x7F) << 21 | (b[7] & 0x7F) << 14 | (b[8] & 0x7F) << 7 | (b[9] & 0x7F);
    pos += 10 + size + ((b[5] & 0x10) ? 10 : 0);
    tagged = true;
  }
  // Two consecutive frame headers, so that four random bytes do not pass for MP3.
  uint8_t h[4];
  MpegFrame a, c;
  if (in.ReadAt(pos, h, 4) == 4 && ParseMpegHeader(h, &a) && a.length > 0) {
    if (pos + a.length >= in.size()) return pos;
    if (in.ReadAt(pos + a.length, h, 4) == 4 && ParseMpegHeader(h, &c) && c.layer == a.layer && c.rate == a.rate) {
      return pos;
    }
  }
  return tagged ? -2 : -1;  // -2: an ID3 tag with no MPEG audio behind it
}

}  // namespace

const char* FamilyName(Family f) {
  switch (f) {
    case Family::kWav: return "wav";
    case Family::kRf64: return "rf64";
    case Family::kAiff: return "aiff";
    case Family::kAu: return "au";
    case Family::kFlac: return "flac";
    case Family::kOgg: return "ogg";
    case Family::kMpeg: return "mp3";
    default: return "unknown";
  }
}

bool ParseMpegHeader(const uint8_t* p, MpegFrame* f) {
  uint32_t h = Be32(p);
  if ((h & 0xFFE00000u) != 0xFFE00000u) return false;
  int ver_bits = (h >> 19) & 3, layer_bits = (h >> 17) & 3, br = (h >> 12) & 15, sr = (h >> 10) & 3;
  int pad = (h >> 9) & 1, mode = (h >> 6) & 3;
  if (ver_bits == 1 || layer_bits == 0 || br == 15 || sr == 3) return false;
  static const int kBitrates[2][3][15] = {
      {{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
       {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
       {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}},
      {{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
       {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
       {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}}};
  static const int kRates[3] = {44100, 48000, 32000};
  f->version = ver_bits == 3 ? 1 : ver_bits == 2 ? 2 : 25;
  f->layer = 4 - layer_bits;
  f->rate = kRates[sr] / (f->version == 1 ? 1 : f->version == 2 ? 2 : 4);
  f->channels = mode == 3 ? 1 : 2;
  int kbps = kBitrates[f->version == 1 ? 0 : 1][f->layer - 1][br];
  if (f->layer == 1) {
    f->samples = 384;
    f->length = kbps ? (12 * kbps * 1000 / f->rate + pad) * 4 : 0;
  } else {
    f->samples = (f->layer == 3 && f->version != 1) ? 576 : 1152;
    f->length = kbps ? f->samples / 8 * kbps * 1000 / f->rate + pad : 0;
  }
  return true;
}

Sniff SniffInput(const Input& in) {
  Sniff s;
  uint8_t b[512] = {};
  size_t n = in.ReadAt(0, b, sizeof b);
  auto is = [&](size_t off, const char* magic) {
    size_t len = strlen(magic);
    return n >= off + len && memcmp(b + off, magic, len) == 0;
  };
  if ((is(0, "RIFF") || is(0, "RIFX")) && is(8, "WAVE")) s.family = Family::kWav;
  else if (is(0, "RF64") && is(8, "WAVE")) s.family = Family::kRf64;
  else if (is(0, "FORM") && (is(8, "AIFF") || is(8, "AIFC"))) s.family = Family::kAiff;
  else if (is(0, ".snd") || is(0, "dns.")) s.family = Family::kAu;
  else if (is(0, "fLaC")) s.family = Family::kFlac;
  else if (is(0, "OggS")) s.family = Family::kOgg;
  if (s.family != Family::kUnknown) return s;

  s.id3 = is(0, "ID3");
  int64_t mpeg = MpegStart(in);
  if (mpeg >= 0) {
    s.family = Family::kMpeg;
    s.mpeg_start = mpeg;
    return s;
  }
  if (mpeg == -2) {
    s.what = "an ID3 tag without MPEG audio frames behind it";
    return s;
  }

  // Not something we decode: name the usual suspects so the client knows what to change.
  if (is(0, "\x1A\x45\xDF\xA3")) s.what = "WebM/Matroska";
  else if (is(4, "ftyp")) s.what = "MP4/M4A (AAC)";
  else if (is(0, "#!AMR")) s.what = "AMR";
  else if (is(0, "caff")) s.what = "CAF";
  else if (is(0, "riff")) s.what = "Wave64";
  else if (n >= 2 && b[0] == 0xFF && (b[1] & 0xF6) == 0xF0) s.what = "AAC (ADTS)";
  else if (is(0, "RIFF")) s.what = "a RIFF file that is not WAVE";
  else {
    bool text = n > 0;
    for (size_t i = 0; i < n && text; i++) {
      uint8_t c = b[i];
      if (c < 0x09 || (c > 0x0D && c < 0x20) || c == 0x7F) text = false;
    }
    if (text) s.what = "text";
  }
  return s;
}

}  // namespace earshot::decode
