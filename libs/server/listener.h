#ifndef CRM_LIBS_SERVER_LISTENER_H_
#define CRM_LIBS_SERVER_LISTENER_H_

// The gRPC server's TCP listener, run by us rather than by gRPC. gRPC 1.51 stops listening for
// good on the first accept() error other than EAGAIN: once a flood of connections had used up
// the process's file descriptors (EMFILE), the server never accepted another connection, even
// after the flood was gone. This listener caps connections below the descriptor limit, sheds
// what it cannot take, backs off while descriptors are short, and hands every connection it
// keeps to the server through gRPC's external connection acceptor.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "grpcpp/server_builder.h"

namespace crm::server {

// "host:port" or "[v6]:port" -> host (without brackets) and port (0-65535). INVALID_ARGUMENT
// naming `address` otherwise.
absl::Status SplitAddress(const std::string& address, std::string* host, std::string* port);

class Listener {
 public:
  struct Options {
    // host:port; port 0 picks a free one (see port()). IPv6 hosts in brackets. Required.
    std::string address;
    // Descriptors kept free for everything but client connections (the log's and projections'
    // files, the metrics and dashboard servers): a connection whose descriptor would be number
    // RLIMIT_NOFILE - reserve or above is closed at once. Descriptors are handed out lowest
    // first, so a number that high means that many are open. Default: 1/8 of the limit, at
    // least 64.
    int reserve = 0;
  };

  // Binds and listens (the accept thread starts with Start()). UNAVAILABLE when the address
  // cannot be bound, INVALID_ARGUMENT when it cannot be parsed.
  static absl::StatusOr<std::unique_ptr<Listener>> Bind(Options options);
  // Stops accepting and closes the listening socket; connections handed over stay the server's.
  ~Listener();

  // Starts accepting into `acceptor`, which must outlive this listener (or Stop()).
  void Start(grpc::experimental::ExternalConnectionAcceptor* acceptor);
  // Stops the accept thread; idempotent.
  void Stop();

  int port() const { return port_; }
  // Connections closed at once because descriptors ran short (for the operators' metric).
  int64_t shed() const { return shed_.load(std::memory_order_relaxed); }
  // The highest descriptor number a connection may get.
  int max_fd() const { return max_fd_; }

 private:
  Listener() = default;
  void Loop(grpc::experimental::ExternalConnectionAcceptor* acceptor);
  // Accepts and closes one pending connection when descriptors ran out, using the spare.
  void ShedOne();
  // Sleeps up to `ms` unless Stop() is called; false when stopping.
  bool Pause(int ms);

  int fd_ = -1;
  int wake_fd_ = -1;   // eventfd: Stop() wakes the accept thread's poll()
  int spare_fd_ = -1;  // /dev/null, closed to free one descriptor when none is left
  int port_ = 0;
  int max_fd_ = 0;
  std::atomic<int64_t> shed_{0};
  std::thread thread_;
};

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_LISTENER_H_
