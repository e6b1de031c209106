#include "gophermq/io/listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gophermq {
namespace {

constexpr int kBacklog = 4096;

std::string describe(const ListenAddress& address) {
  std::string host =
      address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host;
  return host + ":" + std::to_string(address.port);
}

struct Resolved {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET6;
};

bool resolve(const ListenAddress& address, bool ipv6_any, Resolved& resolved, std::string& error) {
  if (address.host.empty()) {
    if (ipv6_any) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&resolved.storage);
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_any;
      in6->sin6_port = htons(address.port);
      resolved.length = sizeof(sockaddr_in6);
      resolved.family = AF_INET6;
    } else {
      auto* in4 = reinterpret_cast<sockaddr_in*>(&resolved.storage);
      in4->sin_family = AF_INET;
      in4->sin_addr.s_addr = htonl(INADDR_ANY);
      in4->sin_port = htons(address.port);
      resolved.length = sizeof(sockaddr_in);
      resolved.family = AF_INET;
    }
    return true;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(address.port);
  int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    error = "cannot resolve " + address.host + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&resolved.storage, found->ai_addr, found->ai_addrlen);
  resolved.length = found->ai_addrlen;
  resolved.family = found->ai_family;
  freeaddrinfo(found);
  return true;
}

// Binds one socket; `reuse_port` joins the shard group.
int bind_socket(const Resolved& resolved, bool reuse_port, int& error_number) {
  int fd = socket(resolved.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error_number = errno;
    return -1;
  }
  int one = 1;
  int zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (resolved.family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&resolved.storage), resolved.length) != 0 ||
      (reuse_port && listen(fd, kBacklog) != 0)) {
    error_number = errno;
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

Listeners open_listeners(const ListenAddress& address, unsigned count) {
  Listeners listeners;
  Resolved resolved;
  // IPv6 "any" also takes IPv4 where the kernel has IPv6 at all.
  bool ipv6_any = true;
  if (!resolve(address, ipv6_any, resolved, listeners.error)) return listeners;

  int error_number = 0;
  if (address.port != 0) {
    // SO_REUSEPORT would silently share the port with another broker already
    // running there. A plain bind first finds out whether the port is free.
    int probe = bind_socket(resolved, false, error_number);
    if (probe < 0 && address.host.empty() && error_number == EAFNOSUPPORT) {
      ipv6_any = false;
      resolve(address, ipv6_any, resolved, listeners.error);
      probe = bind_socket(resolved, false, error_number);
    }
    if (probe < 0) {
      listeners.error =
          "cannot listen on " + describe(address) + ": " + std::strerror(error_number);
      return listeners;
    }
    close(probe);
  }

  for (unsigned i = 0; i < count; ++i) {
    int fd = bind_socket(resolved, true, error_number);
    if (fd < 0 && i == 0 && address.host.empty() && error_number == EAFNOSUPPORT) {
      resolve(address, false, resolved, listeners.error);
      fd = bind_socket(resolved, true, error_number);
    }
    if (fd < 0) {
      listeners.error =
          "cannot listen on " + describe(address) + ": " + std::strerror(error_number);
      close_listeners(listeners);
      return listeners;
    }
    if (i == 0) {
      // With port 0 the kernel picked one: the other shards join that port.
      sockaddr_storage bound{};
      socklen_t length = sizeof bound;
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
      listeners.port =
          ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      if (resolved.family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&resolved.storage)->sin6_port = htons(listeners.port);
      } else {
        reinterpret_cast<sockaddr_in*>(&resolved.storage)->sin_port = htons(listeners.port);
      }
    }
    listeners.fds.push_back(fd);
  }
  return listeners;
}

void close_listeners(Listeners& listeners) {
  for (int fd : listeners.fds) close(fd);
  listeners.fds.clear();
}

}  // namespace gophermq
