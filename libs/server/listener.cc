#include "libs/server/listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/thread_name.h"
#include "libs/server/logging.h"

namespace crm::server {

absl::Status SplitAddress(const std::string& address, std::string* host, std::string* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "' is not host:port"));
  }
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  int n = 0;
  if (!absl::SimpleAtoi(*port, &n) || n < 0 || n > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "' has no port number"));
  }
  return absl::OkStatus();
}

namespace {

int OpenSpare() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

absl::StatusOr<std::unique_ptr<Listener>> Listener::Bind(Options options) {
  std::string host, port;
  if (absl::Status s = SplitAddress(options.address, &host, &port); !s.ok()) return s;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve listen address '", options.address, "': ",
                                                   gai_strerror(rc)));
  }
  std::unique_ptr<Listener> l(new Listener());
  int last_errno = 0;
  for (addrinfo* a = found; a != nullptr && l->fd_ < 0; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Accepted sockets inherit it: gRPC's own listener sets it too, for small unary answers.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (a->ai_family == AF_INET6) {
      const int zero = 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      last_errno = errno;
      close(fd);
      continue;
    }
    l->fd_ = fd;
  }
  freeaddrinfo(found);
  if (l->fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.address, ": ", std::strerror(last_errno)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(l->fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  l->port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  const int limit = static_cast<int>(std::min<rlim_t>(lim.rlim_cur, 1 << 30));
  const int reserve = options.reserve > 0 ? options.reserve : std::max(64, limit / 8);
  l->max_fd_ = std::max(1, limit - reserve) - 1;
  l->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  l->spare_fd_ = OpenSpare();
  if (l->wake_fd_ < 0) return absl::UnavailableError("cannot create the listener's wake-up descriptor");
  return l;
}

Listener::~Listener() {
  Stop();
  if (fd_ >= 0) close(fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (spare_fd_ >= 0) close(spare_fd_);
}

void Listener::Start(grpc::experimental::ExternalConnectionAcceptor* acceptor) {
  thread_ = std::thread([this, acceptor] {
    NameThisThread("grpc-accept");
    Loop(acceptor);
  });
}

void Listener::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  thread_.join();
}

bool Listener::Pause(int ms) {
  pollfd p{wake_fd_, POLLIN, 0};
  return poll(&p, 1, ms) == 0;
}

void Listener::ShedOne() {
  if (spare_fd_ >= 0) {
    close(spare_fd_);
    spare_fd_ = -1;
  }
  const int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    shed_.fetch_add(1, std::memory_order_relaxed);
  }
  spare_fd_ = OpenSpare();
}

void Listener::Loop(grpc::experimental::ExternalConnectionAcceptor* acceptor) {
  int64_t logged_shed = 0;
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) {
      if (!Pause(100)) return;
      continue;
    }
    if (fds[1].revents != 0) return;
    for (;;) {
      const int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        if (fd > max_fd_) {
          close(fd);
          shed_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters p;
        p.listener_fd = fd_;
        p.fd = fd;
        acceptor->HandleNewConnection(&p);
        continue;
      }
      const int err = errno;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors or memory: close the oldest waiting connection, so its client
        // hears at once instead of timing out, and let the server breathe before trying again.
        ShedOne();
        if (shed() - logged_shed >= 1000 || logged_shed == 0) {
          LogWarn(absl::StrCat("gRPC listener: out of file descriptors or memory (", std::strerror(err),
                               "); shedding connections, ", shed(), " so far"));
          logged_shed = shed();
        }
        if (!Pause(10)) return;
        break;
      }
      LogError(absl::StrCat("gRPC listener: accept failed: ", std::strerror(err), "; retrying"));
      if (!Pause(100)) return;
      break;
    }
  }
}

}  // namespace crm::server
