#ifndef EARSHOT_SD_NOTIFY_H_
#define EARSHOT_SD_NOTIFY_H_

#include <napi.h>

namespace earshot {

// notify("READY=1") → true when sent, false when not running under systemd. A datagram that
// cannot be sent (no listener, a full queue, a bad NOTIFY_SOCKET) throws an Error with code
// ERR_SYSTEMD; src/systemd.ts logs it and the service runs on.
Napi::Value Notify(const Napi::CallbackInfo& info);

}  // namespace earshot

#endif  // EARSHOT_SD_NOTIFY_H_
