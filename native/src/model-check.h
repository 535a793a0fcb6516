// Reads a ggml whisper model file end to end without trusting it, before whisper.cpp
// sees it. whisper.cpp's loader trusts sizes and counts from the file (a wrong tensor
// header can write past a stack array, a huge count allocates without bound, an unknown
// type aborts in ggml), so a damaged file could take the whole service down. This check
// refuses such files with a clear reason instead.
#ifndef EARSHOT_MODEL_CHECK_H_
#define EARSHOT_MODEL_CHECK_H_

#include <napi.h>

#include <cstdint>
#include <string>

#include "errors.h"

namespace earshot {

struct ModelSummary {
  int32_t n_vocab = 0;
  int32_t n_audio_ctx = 0;
  int32_t n_audio_state = 0;
  int32_t n_audio_head = 0;
  int32_t n_audio_layer = 0;
  int32_t n_text_ctx = 0;
  int32_t n_text_state = 0;
  int32_t n_text_head = 0;
  int32_t n_text_layer = 0;
  int32_t n_mels = 0;
  int32_t ftype = 0;          // without the quantization version factor
  std::string weight_type;    // ggml type name of the big matrices: f16, q5_0, ...
  int64_t file_bytes = 0;
  int64_t tensor_bytes = 0;
  int32_t tensors = 0;
  bool multilingual = false;
};

// Returns an empty Failure when the file is a structurally valid whisper model.
Failure CheckModelFile(const std::string& path, ModelSummary* summary);

// The summary as JavaScript sees it (checkModel() and Model.info share it).
Napi::Object SummaryObject(Napi::Env env, const ModelSummary& summary);

// The inverse, for a summary JavaScript remembered from an earlier check of the same file
// (load's `verified` option); throws a TypeError when a field is missing or of the wrong type.
ModelSummary SummaryFromObject(Napi::Env env, const Napi::Object& o);

}  // namespace earshot

#endif  // EARSHOT_MODEL_CHECK_H_
