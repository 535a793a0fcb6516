// Integrity checks that the codec libraries do not make.
//
// libsndfile quietly shortens a WAV, AIFF or AU whose header declares more data than the
// file holds, libmpg123 quietly drops a cut-off last frame, and an Ogg stream cut at a page
// boundary decodes cleanly. A truncated upload must fail, not become a shorter transcript.
#ifndef EARSHOT_DECODE_INTEGRITY_H_
#define EARSHOT_DECODE_INTEGRITY_H_

#include <cstdint>

#include "input.h"
#include "sniff.h"

namespace earshot::decode {

// True when a chunk-based header declares a data chunk that runs past the end of the file.
// Streaming writers that cannot seek back leave 0xFFFFFFFF or another huge placeholder as
// the size: those mean "unknown" and are not held against the file. So is anything the walk
// cannot follow (a chunk id that is not ASCII, as after an unpadded odd-sized chunk):
// libsndfile has the last word on such files.
bool ChunkedHeaderTruncated(const Input& in, Family family);

// True when an AU header declares more audio data than the file holds.
bool AuTruncated(const Input& in);

// True unless the file ends with a complete, CRC-valid Ogg page that carries end-of-stream.
bool OggTruncated(const Input& in);

struct MpegScan {
  MpegFrame first{};
  uint64_t frames = 0;       // audio frames walked (a Xing/Info frame is not audio)
  uint64_t samples = 0;      // their samples, before gapless trimming
  bool truncated = false;    // the last frame runs past the end of the file
  bool complete = false;     // the walk reached the end of the file or a trailer
  uint64_t tag_frames = 0;   // the frame count a Xing/Info/VBRI tag states, 0 if none
};

// Walks the MPEG frames from the first to the last. A frame whose declared length runs past
// the end of the file means the upload was cut off; fewer frames than the Xing/Info/VBRI tag
// of the first frame states means it was cut at a frame boundary. Junk in the middle ends
// the walk without a verdict (libmpg123 resynchronises over it); ID3v1 and APE trailers end
// it cleanly.
MpegScan ScanMpeg(const Input& in, int64_t start);

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_INTEGRITY_H_
