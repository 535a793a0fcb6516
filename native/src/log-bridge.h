// whisper.cpp and ggml log through one process-wide callback. The bridge splits their
// output into lines and hands them to a JavaScript function on the main thread, from
// whichever thread logged. A thread can also capture its own lines (a model load keeps
// whisper's reason for refusing a file, for the error message).
#ifndef EARSHOT_LOG_BRIDGE_H_
#define EARSHOT_LOG_BRIDGE_H_

#include <napi.h>

#include <string>
#include <vector>

namespace earshot {

struct LogLine {
  int level;  // ggml_log_level: 1 debug, 2 info, 3 warn, 4 error
  std::string text;
};

// Installs the whisper/ggml log callback; lines go to stderr (warnings and errors only)
// until a sink is set.
void InstallLogBridge(Napi::Env env);

// setLogger(fn(level: string, message: string), minLevel: 'debug'|'info'|'warn'|'error')
Napi::Value SetLogger(const Napi::CallbackInfo& info);

// Collects the lines logged by the current thread while it lives; they are still forwarded.
class LogCapture {
 public:
  // forward=false keeps the lines away from the logger (output read only by this code).
  explicit LogCapture(bool forward = true);
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  const std::vector<LogLine>& lines() const { return lines_; }
  // The warning and error lines, joined with "; ", for error messages.
  std::string Problems() const;

 private:
  friend bool CaptureLine(const LogLine& line);
  std::vector<LogLine> lines_;
  bool forward_;
  LogCapture* previous_;
};

}  // namespace earshot

#endif  // EARSHOT_LOG_BRIDGE_H_
