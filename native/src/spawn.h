#ifndef EARSHOT_SPAWN_H_
#define EARSHOT_SPAWN_H_

#include <napi.h>

namespace earshot {

// spawnProcess(file, args, env, childFds, onExit) → pid: starts `file` (a path, not looked up
// in PATH) with posix_spawn(), argv = [file, ...args], environment `env` ("NAME=value"
// strings). Child fd i is a copy of the parent's childFds[i] (-1: /dev/null); the child has
// no other descriptor. onExit(code, signal) is called on the JS thread once it has ended:
// (exit code, 0) or (null, signal number). Throws an Error with an errno `code` (ENOENT,
// EACCES, ...) when it cannot be started. See src/engine/native-spawn.ts for why.
Napi::Value SpawnProcess(const Napi::CallbackInfo& info);

}  // namespace earshot

#endif  // EARSHOT_SPAWN_H_
