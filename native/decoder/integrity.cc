#include "integrity.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace earshot::decode {
namespace {

uint32_t OggCrc(const uint8_t* p, size_t n) {
  static uint32_t table[256];
  if (table[1] == 0) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t r = i << 24;
      for (int k = 0; k < 8; k++) r = (r & 0x80000000u) ? (r << 1) ^ 0x04C11DB7u : r << 1;
      table[i] = r;
    }
  }
  uint32_t crc = 0;
  for (size_t i = 0; i < n; i++) crc = (crc << 8) ^ table[((crc >> 24) ^ p[i]) & 0xFF];
  return crc;
}

}  // namespace

bool ChunkedHeaderTruncated(const Input& in, Family family) {
  Window w(in);
  const bool aiff = family == Family::kAiff;
  const uint8_t* head = w.At(0, 12);
  if (head == nullptr) return true;
  const bool big = aiff || memcmp(head, "RIFX", 4) == 0;
  uint64_t rf64_data = 0;
  int64_t pos = 12;
  for (int chunks = 0; chunks < 256; chunks++) {
    const uint8_t* c = w.At(pos, 8);
    if (c == nullptr) return pos < in.size();  // a partial chunk header: cut off
    for (int i = 0; i < 4; i++) {
      if (c[i] < 0x20 || c[i] > 0x7E) return false;
    }
    uint64_t size = big ? Be32(c + 4) : Le32(c + 4);
    const char* data_id = aiff ? "SSND" : "data";
    if (family == Family::kRf64 && memcmp(c, "ds64", 4) == 0) {
      const uint8_t* ds = w.At(pos + 8, 16);
      if (ds == nullptr) return true;
      rf64_data = Le64(ds + 8);
    }
    if (memcmp(c, data_id, 4) == 0) {
      if (size == 0xFFFFFFFFu && family == Family::kRf64) size = rf64_data;
      else if (size >= 0x7FFF0000u) return false;
      return pos + 8 + static_cast<int64_t>(size) > in.size();
    }
    pos += 8 + static_cast<int64_t>(size) + (size & 1);
    if (pos > in.size()) return true;  // a chunk before the audio is itself cut off
  }
  return false;  // no data chunk within reach: libsndfile will say what is wrong
}

bool AuTruncated(const Input& in) {
  uint8_t h[12];
  if (in.ReadAt(0, h, 12) < 12) return true;
  bool le = memcmp(h, "dns.", 4) == 0;
  uint32_t offset = le ? Le32(h + 4) : Be32(h + 4);
  uint32_t size = le ? Le32(h + 8) : Be32(h + 8);
  if (size == 0xFFFFFFFFu) return false;
  return static_cast<int64_t>(offset) + static_cast<int64_t>(size) > in.size();
}

bool OggTruncated(const Input& in) {
  const size_t kMaxPage = 27 + 255 + 255 * 255;
  int64_t start = std::max<int64_t>(0, in.size() - static_cast<int64_t>(kMaxPage));
  std::vector<uint8_t> tail(static_cast<size_t>(in.size() - start));
  size_t n = in.ReadAt(start, tail.data(), tail.size());
  for (size_t p = 0; p + 27 <= n; p++) {
    if (memcmp(&tail[p], "OggS", 4) != 0 || tail[p + 4] != 0) continue;
    size_t segs = tail[p + 26];
    if (p + 27 + segs > n) continue;
    size_t len = 27 + segs;
    for (size_t i = 0; i < segs; i++) len += tail[p + 27 + i];
    if (p + len != n) continue;
    std::vector<uint8_t> page(tail.begin() + static_cast<long>(p), tail.begin() + static_cast<long>(p + len));
    uint32_t stored = Le32(&page[22]);
    memset(&page[22], 0, 4);
    if (OggCrc(page.data(), page.size()) != stored) continue;
    return (page[5] & 0x04) == 0;
  }
  return true;
}

MpegScan ScanMpeg(const Input& in, int64_t start) {
  MpegScan s;
  Window w(in);
  int64_t pos = start;
  const uint8_t* p = w.At(pos, 4);
  if (p == nullptr || !ParseMpegHeader(p, &s.first)) return s;
  // The Xing/Info tag sits after the side information of the first frame, VBRI at 36: both
  // within its first 200 bytes. Xing/Info count the frames after theirs; VBRI's count is
  // read as including its own frame, the lenient reading.
  bool tag_frame_is_audio = true;
  size_t probe = std::min<size_t>(s.first.length > 4 ? static_cast<size_t>(s.first.length) : 4, 200);
  if (const uint8_t* f = w.At(pos, probe)) {
    for (size_t i = 4; i + 18 <= probe; i++) {
      if (memcmp(f + i, "Xing", 4) == 0 || memcmp(f + i, "Info", 4) == 0) {
        tag_frame_is_audio = false;
        if (Be32(f + i + 4) & 1) s.tag_frames = Be32(f + i + 8);
        break;
      }
      if (memcmp(f + i, "VBRI", 4) == 0) {
        s.tag_frames = Be32(f + i + 14);
        break;
      }
    }
  }
  while (pos < in.size()) {
    MpegFrame f;
    p = w.At(pos, 4);
    if (p == nullptr) return s;  // a few stray trailing bytes: no verdict
    if (!ParseMpegHeader(p, &f) || f.layer != s.first.layer || f.rate != s.first.rate) {
      const uint8_t* t = w.At(pos, 8);
      s.complete = t != nullptr && (memcmp(t, "TAG", 3) == 0 || memcmp(t, "APETAGEX", 8) == 0 || memcmp(t, "LYRICS", 6) == 0);
      return s;
    }
    if (f.length == 0) return s;  // free format: lengths are not in the header
    if (pos + f.length > in.size()) {
      s.truncated = true;
      return s;
    }
    if (pos != start || tag_frame_is_audio) {
      s.frames++;
      s.samples += static_cast<uint64_t>(f.samples);
    }
    pos += f.length;
  }
  s.complete = true;
  return s;
}

}  // namespace earshot::decode
