// Decoding through libsndfile: WAV, RF64, AIFF, AU, FLAC, Ogg Vorbis, Ogg Opus, and the
// headerless formats (l16, mu-law, A-law).
#ifndef EARSHOT_DECODE_SNDFILE_PATH_H_
#define EARSHOT_DECODE_SNDFILE_PATH_H_

#include "input.h"
#include "options.h"
#include "pcm-sink.h"
#include "sniff.h"

namespace earshot::decode {

// Decodes `in` into `sink`; family kUnknown means headerless audio as `o.format` declares
// it. Fails with kUnsupported, kCorrupt, kTooLong or kIo.
Decoded DecodeWithSndfile(const Input& in, const Options& o, Family family, PcmSink& sink);

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_SNDFILE_PATH_H_
