// Container detection: what an upload is, from its first bytes (and, for MPEG audio, its
// first two frame headers), whatever its Content-Type says.
#ifndef EARSHOT_DECODE_SNIFF_H_
#define EARSHOT_DECODE_SNIFF_H_

#include <cstdint>
#include <string>

#include "input.h"

namespace earshot::decode {

enum class Family { kUnknown, kWav, kRf64, kAiff, kAu, kFlac, kOgg, kMpeg };

// The report's container name of a family ("mp3" for all MPEG audio).
const char* FamilyName(Family f);

// The Content-Type's container name for a family (RF64 is a WAV variant).
inline const char* ExpectedName(Family f) { return f == Family::kRf64 ? "wav" : FamilyName(f); }

struct MpegFrame {
  int version;      // 1, 2, or 25 (MPEG 2.5)
  int layer;        // 1..3
  int rate;
  int channels;
  int length;       // bytes, 0 for free-format streams
  int samples;      // per frame
};

// Decodes a 4-byte MPEG audio frame header; false if it is not one.
bool ParseMpegHeader(const uint8_t* p, MpegFrame* f);

struct Sniff {
  Family family = Family::kUnknown;
  bool id3 = false;  // starts with an ID3v2 tag
  std::string what;  // for unknown data: what it looks like, for the message
  int64_t mpeg_start = 0;
};

Sniff SniffInput(const Input& in);

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_SNIFF_H_
