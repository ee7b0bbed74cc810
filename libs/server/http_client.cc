#include "libs/server/http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "libs/server/listener.h"

namespace crm::server {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits until `fd` is ready for `events` or `deadline`; false at the deadline.
bool WaitFor(int fd, short events, absl::Time deadline) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd, events, 0};
    const int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 60'000));
    const int rc = ::poll(&p, 1, ms);
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return true;  // the next call on fd reports the error
  }
}

absl::Status Late(const std::string& address) {
  return absl::DeadlineExceededError(absl::StrCat("http://", address, " did not answer in time"));
}

// Connects to one of `found` before `deadline`; -1 (and *error) when none accepts.
int Connect(addrinfo* found, absl::Time deadline, std::string* error) {
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      *error = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (!WaitFor(fd, POLLOUT, deadline)) {
        ::close(fd);
        *error = "timed out";
        return -1;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc == 0) return fd;
    *error = std::strerror(errno);
    ::close(fd);
  }
  return -1;
}

}  // namespace

absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path, absl::Time deadline,
                                    size_t max_bytes) {
  std::string host, port;
  if (absl::Status s = SplitAddress(address, &host, &port); !s.ok()) return s;
  if (host.empty()) return absl::InvalidArgumentError(absl::StrCat("address '", address, "' has no host"));
  if (path.empty() || path[0] != '/' || absl::StrContains(path, " ") || absl::StrContains(path, "\r") ||
      absl::StrContains(path, "\n")) {
    return absl::InvalidArgumentError("path: an absolute path without spaces or line breaks");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  std::string error;
  const int raw = Connect(found, deadline, &error);
  ::freeaddrinfo(found);
  if (raw < 0) {
    if (error == "timed out") return Late(address);
    return absl::UnavailableError(absl::StrCat("cannot connect to ", address, ": ", error));
  }
  Fd fd(raw);
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host, "\r\nConnection: close\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    if (!WaitFor(fd.get(), POLLOUT, deadline)) return Late(address);
    const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("cannot send to ", address, ": ", std::strerror(errno)));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  // The head is at most a few hundred bytes beyond the body's limit.
  const size_t max_total = max_bytes + 64 * 1024;
  std::string response;
  std::vector<char> buf(64 * 1024);
  while (true) {
    if (!WaitFor(fd.get(), POLLIN, deadline)) return Late(address);
    const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("cannot read from ", address, ": ", std::strerror(errno)));
    }
    response.append(buf.data(), static_cast<size_t>(n));
    if (response.size() > max_total) {
      return absl::ResourceExhaustedError(
          absl::StrCat("http://", address, path, " answered more than ", max_bytes, " bytes"));
    }
  }
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("http://", address, path, " answered no HTTP head"));
  }
  const absl::string_view head(response.data(), head_end);
  const absl::string_view status_line = head.substr(0, head.find("\r\n"));
  std::vector<absl::string_view> parts = absl::StrSplit(status_line, absl::MaxSplits(' ', 2));
  int code = 0;
  if (parts.size() < 2 || !absl::StartsWith(parts[0], "HTTP/1.") || !absl::SimpleAtoi(parts[1], &code) || code != 200) {
    return absl::UnavailableError(absl::StrCat("http://", address, path, " answered '",
                                               status_line.substr(0, std::min<size_t>(status_line.size(), 80)), "'"));
  }
  if (absl::StrContains(absl::AsciiStrToLower(head), "transfer-encoding: chunked")) {
    return absl::UnavailableError(absl::StrCat("http://", address, path, " answered in chunks to an HTTP/1.0 request"));
  }
  std::string body = response.substr(head_end + 4);
  if (body.size() > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("http://", address, path, " answered more than ", max_bytes, " bytes"));
  }
  return body;
}

}  // namespace crm::server
