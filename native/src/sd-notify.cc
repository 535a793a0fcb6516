// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET, never blocking the
// event loop (MSG_DONTWAIT: when systemd's queue is full the notification fails instead).
#include "sd-notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "errors.h"

namespace earshot {

Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "notify(state) expects a string");
  const std::string state = info[0].As<Napi::String>();
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path == nullptr || socket_path[0] == '\0') return Napi::Boolean::New(env, false);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(socket_path);
  if (len >= sizeof(addr.sun_path)) throw MakeError(env, kErrSystemd, "sd_notify: NOTIFY_SOCKET path is too long");
  std::memcpy(addr.sun_path, socket_path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw MakeError(env, kErrSystemd, std::string("sd_notify: socket: ") + std::strerror(errno));
  const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                              reinterpret_cast<sockaddr*>(&addr), addr_len);
  const int saved = errno;
  close(fd);
  if (sent < 0) {
    throw MakeError(env, kErrSystemd, std::string("sd_notify: sendto ") + socket_path + ": " + std::strerror(saved));
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace earshot
