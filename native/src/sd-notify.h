#ifndef EARSHOT_SD_NOTIFY_H_
#define EARSHOT_SD_NOTIFY_H_

#include <napi.h>

namespace earshot {

// notify("READY=1") → true when sent, false when not running under systemd.
Napi::Value Notify(const Napi::CallbackInfo& info);

}  // namespace earshot

#endif  // EARSHOT_SD_NOTIFY_H_
