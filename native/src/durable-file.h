#ifndef EARSHOT_DURABLE_FILE_H_
#define EARSHOT_DURABLE_FILE_H_

#include <napi.h>

namespace earshot {

// writeNewFile(path, buffers, mode) → Promise<void>: creates `path` (O_EXCL), writes the
// buffers one after the other, fsyncs and closes it, all in one task on libuv's pool.
// Rejects with an Error as Node's fs gives them (`code` ENOSPC, EEXIST, ..., `errno`,
// `syscall`, `path`); a file it created is removed again when a later step fails. Why:
// a small upload's four pool tasks (open, write, fsync, close) become one
// (RequestBody.toFile in src/http/body.ts; docs/group-commit.md).
Napi::Value WriteNewFile(const Napi::CallbackInfo& info);

}  // namespace earshot

#endif  // EARSHOT_DURABLE_FILE_H_
