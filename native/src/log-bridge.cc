#include "log-bridge.h"

#include <cstdio>
#include <mutex>

#include "whisper.h"

namespace earshot {

bool CaptureLine(const LogLine& line);

namespace {

thread_local LogCapture* tl_capture = nullptr;
thread_local std::string tl_partial;
thread_local int tl_level = GGML_LOG_LEVEL_INFO;

std::mutex g_mutex;
Napi::ThreadSafeFunction g_sink;
bool g_sink_active = false;
int g_min_level = GGML_LOG_LEVEL_INFO;

const char* LevelName(int level) {
  switch (level) {
    case GGML_LOG_LEVEL_DEBUG: return "debug";
    case GGML_LOG_LEVEL_WARN: return "warn";
    case GGML_LOG_LEVEL_ERROR: return "error";
    default: return "info";
  }
}

void Forward(const LogLine& line) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (line.level < g_min_level) return;
  if (!g_sink_active) {
    if (line.level >= GGML_LOG_LEVEL_WARN) std::fprintf(stderr, "whisper: %s\n", line.text.c_str());
    return;
  }
  auto* copy = new LogLine(line);
  napi_status status = g_sink.NonBlockingCall(copy, [](Napi::Env env, Napi::Function fn, LogLine* data) {
    if (env != nullptr && fn != nullptr) {
      fn.Call({Napi::String::New(env, LevelName(data->level)), Napi::String::New(env, data->text)});
    }
    delete data;
  });
  if (status != napi_ok) delete copy;
}

void OnLog(ggml_log_level level, const char* text, void* /*user_data*/) {
  if (text == nullptr) return;
  if (level != GGML_LOG_LEVEL_CONT) tl_level = level;
  tl_partial.append(text);
  size_t newline;
  while ((newline = tl_partial.find('\n')) != std::string::npos) {
    LogLine line{tl_level, tl_partial.substr(0, newline)};
    tl_partial.erase(0, newline + 1);
    if (line.text.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (CaptureLine(line)) Forward(line);
  }
}

void ReleaseSink() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_sink_active) {
    g_sink.Release();
    g_sink_active = false;
  }
}

}  // namespace

// Returns whether the line should still be forwarded to the logger.
bool CaptureLine(const LogLine& line) {
  if (tl_capture == nullptr) return true;
  tl_capture->lines_.push_back(line);
  return tl_capture->forward_;
}

LogCapture::LogCapture(bool forward) : forward_(forward), previous_(tl_capture) { tl_capture = this; }
LogCapture::~LogCapture() { tl_capture = previous_; }

std::string LogCapture::Problems() const {
  std::string joined;
  for (const auto& line : lines_) {
    if (line.level < GGML_LOG_LEVEL_WARN) continue;
    if (!joined.empty()) joined += "; ";
    joined += line.text;
  }
  return joined;
}

void InstallLogBridge(Napi::Env env) {
  whisper_log_set(OnLog, nullptr);
  // The sink must not outlive the environment that owns it (worker threads, exit).
  env.AddCleanupHook([]() { ReleaseSink(); });
}

Napi::Value SetLogger(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !(info[0].IsFunction() || info[0].IsNull())) {
    throw Napi::TypeError::New(env, "setLogger(fn|null, minLevel?) expects a function or null");
  }
  int min_level = GGML_LOG_LEVEL_INFO;
  if (info.Length() > 1 && info[1].IsString()) {
    const std::string name = info[1].As<Napi::String>();
    if (name == "debug") min_level = GGML_LOG_LEVEL_DEBUG;
    else if (name == "info") min_level = GGML_LOG_LEVEL_INFO;
    else if (name == "warn") min_level = GGML_LOG_LEVEL_WARN;
    else if (name == "error") min_level = GGML_LOG_LEVEL_ERROR;
    else throw Napi::TypeError::New(env, "minLevel must be debug, info, warn or error");
  }
  ReleaseSink();
  std::lock_guard<std::mutex> lock(g_mutex);
  g_min_level = min_level;
  if (info[0].IsFunction()) {
    g_sink = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "earshot-log", 0, 1);
    g_sink.Unref(env);  // logging alone must not keep the process alive
    g_sink_active = true;
  }
  return env.Undefined();
}

}  // namespace earshot
