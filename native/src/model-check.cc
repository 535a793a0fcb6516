#include "model-check.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <vector>

#include "ggml.h"

namespace earshot {
namespace {

constexpr uint32_t kGgmlMagic = 0x67676d6c;  // "ggml"
constexpr int32_t kQuantVersionFactor = 1000;

struct Expected {
  int64_t ne[3];
  ggml_type type;
};

// Reads from a file whose size is known, failing on every short read instead of
// returning garbage as whisper.cpp's loader does.
class Reader {
 public:
  static constexpr int64_t kReadThroughBytes = 1024;

  Reader(FILE* file, int64_t size) : file_(file), size_(size) {}

  bool Read(void* out, size_t bytes, const char* what) {
    if (pos_ + static_cast<int64_t>(bytes) > size_) return Truncated(what);
    if (std::fread(out, 1, bytes, file_) != bytes) return Truncated(what);
    pos_ += static_cast<int64_t>(bytes);
    return true;
  }
  bool Skip(int64_t bytes, const char* what) {
    if (bytes < 0 || pos_ + bytes > size_) return Truncated(what);
    // A short skip (a vocabulary token) is read through stdio's buffer: fseeko drops the
    // buffer, and 51,864 seeks and refills made the check cost 160-250 ms. Only tensor
    // data is seeked over.
    if (bytes <= kReadThroughBytes) {
      char scratch[kReadThroughBytes];
      if (std::fread(scratch, 1, static_cast<size_t>(bytes), file_) != static_cast<size_t>(bytes)) return Truncated(what);
    } else if (fseeko(file_, bytes, SEEK_CUR) != 0) {
      return Truncated(what);
    }
    pos_ += bytes;
    return true;
  }
  int64_t remaining() const { return size_ - pos_; }
  int64_t pos() const { return pos_; }
  const std::string& error() const { return error_; }

 private:
  bool Truncated(const char* what) {
    error_ = std::string("file is truncated: it ends at byte ") + std::to_string(size_) + " while reading " + what;
    return false;
  }
  FILE* file_;
  int64_t size_;
  int64_t pos_ = 0;
  std::string error_;
};

std::string Shape(const int64_t* ne, int n) {
  std::string s = "[";
  for (int i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// The tensors whisper.cpp creates for these hyper-parameters (whisper_model_load), with
// their shapes in ggml order (ne0 first) and types.
std::map<std::string, Expected> ExpectedTensors(const ModelSummary& h, ggml_type wtype) {
  const ggml_type vtype = wtype == GGML_TYPE_F32 ? GGML_TYPE_F32 : GGML_TYPE_F16;
  const ggml_type f32 = GGML_TYPE_F32;
  std::map<std::string, Expected> t;
  const int64_t as = h.n_audio_state, ts = h.n_text_state;
  t["encoder.positional_embedding"] = {{as, h.n_audio_ctx, 1}, f32};
  t["encoder.conv1.weight"] = {{3, h.n_mels, as}, vtype};
  t["encoder.conv1.bias"] = {{1, as, 1}, f32};
  t["encoder.conv2.weight"] = {{3, as, as}, vtype};
  t["encoder.conv2.bias"] = {{1, as, 1}, f32};
  t["encoder.ln_post.weight"] = {{as, 1, 1}, f32};
  t["encoder.ln_post.bias"] = {{as, 1, 1}, f32};
  auto block = [&](const std::string& p, int64_t s, bool cross) {
    t[p + "mlp_ln.weight"] = {{s, 1, 1}, f32};
    t[p + "mlp_ln.bias"] = {{s, 1, 1}, f32};
    t[p + "mlp.0.weight"] = {{s, 4 * s, 1}, wtype};
    t[p + "mlp.0.bias"] = {{4 * s, 1, 1}, f32};
    t[p + "mlp.2.weight"] = {{4 * s, s, 1}, wtype};
    t[p + "mlp.2.bias"] = {{s, 1, 1}, f32};
    for (const char* a : {"attn", "cross_attn"}) {
      if (std::strcmp(a, "cross_attn") == 0 && !cross) continue;
      const std::string q = p + a;
      t[q + "_ln.weight"] = {{s, 1, 1}, f32};
      t[q + "_ln.bias"] = {{s, 1, 1}, f32};
      t[q + ".query.weight"] = {{s, s, 1}, wtype};
      t[q + ".query.bias"] = {{s, 1, 1}, f32};
      t[q + ".key.weight"] = {{s, s, 1}, wtype};
      t[q + ".value.weight"] = {{s, s, 1}, wtype};
      t[q + ".value.bias"] = {{s, 1, 1}, f32};
      t[q + ".out.weight"] = {{s, s, 1}, wtype};
      t[q + ".out.bias"] = {{s, 1, 1}, f32};
    }
  };
  for (int i = 0; i < h.n_audio_layer; i++) block("encoder.blocks." + std::to_string(i) + ".", as, false);
  t["decoder.positional_embedding"] = {{ts, h.n_text_ctx, 1}, f32};
  t["decoder.token_embedding.weight"] = {{ts, h.n_vocab, 1}, wtype};
  t["decoder.ln.weight"] = {{ts, 1, 1}, f32};
  t["decoder.ln.bias"] = {{ts, 1, 1}, f32};
  for (int i = 0; i < h.n_text_layer; i++) block("decoder.blocks." + std::to_string(i) + ".", ts, true);
  return t;
}

Failure Invalid(const std::string& path, const std::string& why) {
  return {kErrModelInvalid, "invalid model file " + path + ": " + why};
}

bool InRange(int32_t v, int32_t lo, int32_t hi) { return v >= lo && v <= hi; }

}  // namespace

Failure CheckModelFile(const std::string& path, ModelSummary* out) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {kErrModelNotFound, "model file not found: " + path};
    return {kErrModelLoad, "cannot stat model file " + path + ": " + std::strerror(errno)};
  }
  if (!S_ISREG(st.st_mode)) return Invalid(path, "not a regular file");
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) return {kErrModelLoad, "cannot open model file " + path + ": " + std::strerror(errno)};

  Reader r(file.get(), static_cast<int64_t>(st.st_size));
  ModelSummary h;
  h.file_bytes = static_cast<int64_t>(st.st_size);

  uint32_t magic = 0;
  if (!r.Read(&magic, sizeof magic, "the magic number")) return Invalid(path, r.error());
  if (magic != kGgmlMagic) return Invalid(path, "bad magic number (not a ggml whisper model)");

  int32_t hp[11];
  if (!r.Read(hp, sizeof hp, "the hyper-parameters")) return Invalid(path, r.error());
  h.n_vocab = hp[0]; h.n_audio_ctx = hp[1]; h.n_audio_state = hp[2]; h.n_audio_head = hp[3];
  h.n_audio_layer = hp[4]; h.n_text_ctx = hp[5]; h.n_text_state = hp[6]; h.n_text_head = hp[7];
  h.n_text_layer = hp[8]; h.n_mels = hp[9];
  const int32_t raw_ftype = hp[10];

  // Whisper's audio front end is fixed: 30 s windows give 1500 encoder positions and the
  // decoder has 448 positions; vocabularies are 51864 (English) to 51866 (large-v3).
  if (!InRange(h.n_vocab, 51864, 51866)) return Invalid(path, "n_vocab " + std::to_string(h.n_vocab) + " is not 51864..51866");
  if (h.n_audio_ctx != 1500) return Invalid(path, "n_audio_ctx " + std::to_string(h.n_audio_ctx) + " is not 1500");
  if (h.n_text_ctx != 448) return Invalid(path, "n_text_ctx " + std::to_string(h.n_text_ctx) + " is not 448");
  if (h.n_mels != 80 && h.n_mels != 128) return Invalid(path, "n_mels " + std::to_string(h.n_mels) + " is not 80 or 128");
  for (auto [state, head, layer, side] : {std::tuple{h.n_audio_state, h.n_audio_head, h.n_audio_layer, "audio"},
                                          std::tuple{h.n_text_state, h.n_text_head, h.n_text_layer, "text"}}) {
    if (!InRange(state, 8, 4096) || !InRange(head, 1, 64) || state % head != 0 || !InRange(layer, 1, 64)) {
      return Invalid(path, std::string("implausible ") + side + " dimensions (state " + std::to_string(state) +
                               ", heads " + std::to_string(head) + ", layers " + std::to_string(layer) + ")");
    }
  }
  if (raw_ftype < 0) return Invalid(path, "negative ftype");
  h.ftype = raw_ftype % kQuantVersionFactor;
  const ggml_type wtype = ggml_ftype_to_ggml_type(static_cast<ggml_ftype>(h.ftype));
  if (wtype == GGML_TYPE_COUNT) return Invalid(path, "unknown ftype " + std::to_string(h.ftype));
  h.weight_type = ggml_type_name(wtype);
  h.multilingual = h.n_vocab >= 51865;

  int32_t n_mel = 0, n_fft = 0;
  if (!r.Read(&n_mel, sizeof n_mel, "the mel filter header") || !r.Read(&n_fft, sizeof n_fft, "the mel filter header")) {
    return Invalid(path, r.error());
  }
  if (n_mel != h.n_mels || n_fft != 201) {
    return Invalid(path, "mel filters are " + std::to_string(n_mel) + "x" + std::to_string(n_fft) + ", expected " +
                             std::to_string(h.n_mels) + "x201");
  }
  if (!r.Skip(int64_t{n_mel} * n_fft * 4, "the mel filters")) return Invalid(path, r.error());

  int32_t n_tokens = 0;
  if (!r.Read(&n_tokens, sizeof n_tokens, "the vocabulary size")) return Invalid(path, r.error());
  if (!InRange(n_tokens, 0, h.n_vocab)) return Invalid(path, "vocabulary has " + std::to_string(n_tokens) + " tokens");
  for (int32_t i = 0; i < n_tokens; i++) {
    uint32_t len = 0;
    if (!r.Read(&len, sizeof len, "the vocabulary")) return Invalid(path, r.error());
    if (len > 1024) return Invalid(path, "token " + std::to_string(i) + " is " + std::to_string(len) + " bytes long");
    if (!r.Skip(len, "the vocabulary")) return Invalid(path, r.error());
  }

  const auto expected = ExpectedTensors(h, wtype);
  std::set<std::string> seen;
  std::vector<char> name_buf;
  while (r.remaining() > 0) {
    int32_t header[3];  // n_dims, name length, type
    if (!r.Read(header, sizeof header, "a tensor header")) return Invalid(path, r.error());
    const int32_t n_dims = header[0], name_len = header[1], ttype = header[2];
    if (!InRange(n_dims, 1, 3)) return Invalid(path, "tensor with " + std::to_string(n_dims) + " dimensions at byte " + std::to_string(r.pos()));
    if (!InRange(name_len, 1, 255)) return Invalid(path, "tensor name of " + std::to_string(name_len) + " bytes");
    int32_t ne32[3] = {1, 1, 1};
    if (!r.Read(ne32, sizeof(int32_t) * n_dims, "a tensor shape")) return Invalid(path, r.error());
    name_buf.resize(name_len);
    if (!r.Read(name_buf.data(), name_len, "a tensor name")) return Invalid(path, r.error());
    const std::string name(name_buf.data(), name_buf.size());

    const auto it = expected.find(name);
    if (it == expected.end()) return Invalid(path, "unexpected tensor '" + name + "'");
    if (!seen.insert(name).second) return Invalid(path, "tensor '" + name + "' appears twice");
    const int64_t ne[3] = {ne32[0], ne32[1], ne32[2]};
    if (ne[0] != it->second.ne[0] || ne[1] != it->second.ne[1] || ne[2] != it->second.ne[2]) {
      return Invalid(path, "tensor '" + name + "' has shape " + Shape(ne, 3) + ", expected " + Shape(it->second.ne, 3));
    }
    if (ttype < 0 || ttype >= GGML_TYPE_COUNT || ttype != it->second.type) {
      return Invalid(path, "tensor '" + name + "' has type " + std::to_string(ttype) + ", expected " +
                               ggml_type_name(it->second.type));
    }
    const auto type = static_cast<ggml_type>(ttype);
    if (ne[0] % ggml_blck_size(type) != 0) return Invalid(path, "tensor '" + name + "' rows do not fill whole blocks");
    const int64_t bytes = static_cast<int64_t>(ggml_row_size(type, ne[0])) * ne[1] * ne[2];
    if (!r.Skip(bytes, ("the data of tensor '" + name + "'").c_str())) return Invalid(path, r.error());
    h.tensor_bytes += bytes;
  }
  if (seen.size() != expected.size()) {
    for (const auto& [name, _] : expected) {
      if (!seen.count(name)) {
        return Invalid(path, "tensor '" + name + "' is missing (" + std::to_string(seen.size()) + " of " +
                                 std::to_string(expected.size()) + " present)");
      }
    }
  }
  h.tensors = static_cast<int32_t>(seen.size());
  *out = h;
  return {};
}

Napi::Object SummaryObject(Napi::Env env, const ModelSummary& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("multilingual", s.multilingual);
  o.Set("weightType", s.weight_type);
  o.Set("ftype", s.ftype);
  o.Set("vocab", s.n_vocab);
  o.Set("audioState", s.n_audio_state);
  o.Set("audioLayers", s.n_audio_layer);
  o.Set("textState", s.n_text_state);
  o.Set("textLayers", s.n_text_layer);
  o.Set("mels", s.n_mels);
  o.Set("tensors", s.tensors);
  o.Set("tensorBytes", static_cast<double>(s.tensor_bytes));
  o.Set("fileBytes", static_cast<double>(s.file_bytes));
  return o;
}

namespace {

double NumberField(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("verified.") + name + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

}  // namespace

ModelSummary SummaryFromObject(Napi::Env env, const Napi::Object& o) {
  ModelSummary s;
  Napi::Value multilingual = o.Get("multilingual");
  Napi::Value weight_type = o.Get("weightType");
  if (!multilingual.IsBoolean()) throw Napi::TypeError::New(env, "verified.multilingual must be a boolean");
  if (!weight_type.IsString()) throw Napi::TypeError::New(env, "verified.weightType must be a string");
  s.multilingual = multilingual.As<Napi::Boolean>();
  s.weight_type = weight_type.As<Napi::String>();
  s.ftype = static_cast<int32_t>(NumberField(env, o, "ftype"));
  s.n_vocab = static_cast<int32_t>(NumberField(env, o, "vocab"));
  s.n_audio_state = static_cast<int32_t>(NumberField(env, o, "audioState"));
  s.n_audio_layer = static_cast<int32_t>(NumberField(env, o, "audioLayers"));
  s.n_text_state = static_cast<int32_t>(NumberField(env, o, "textState"));
  s.n_text_layer = static_cast<int32_t>(NumberField(env, o, "textLayers"));
  s.n_mels = static_cast<int32_t>(NumberField(env, o, "mels"));
  s.tensors = static_cast<int32_t>(NumberField(env, o, "tensors"));
  s.tensor_bytes = static_cast<int64_t>(NumberField(env, o, "tensorBytes"));
  s.file_bytes = static_cast<int64_t>(NumberField(env, o, "fileBytes"));
  return s;
}

}  // namespace earshot
