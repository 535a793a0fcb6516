// Decoding MPEG audio (MP1/2/3) through libmpg123 directly: libsndfile trusts an MP3's
// estimated length and silently stops early on VBR files without a Xing header.
#ifndef EARSHOT_DECODE_MPG123_PATH_H_
#define EARSHOT_DECODE_MPG123_PATH_H_

#include <cstdint>

#include "input.h"
#include "options.h"
#include "pcm-sink.h"

namespace earshot::decode {

// Decodes the MPEG stream that starts at byte `start` of `in` (after any ID3v2 tags) into
// `sink`, after checking it end to end for truncation. Fails with kCorrupt, kTooLong,
// kEmpty or kInternal.
Decoded DecodeWithMpg123(const Input& in, const Options& o, int64_t start, PcmSink& sink);

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_MPG123_PATH_H_
