#ifndef CRM_TOOLS_BENCH_JOURNAL_H_
#define CRM_TOOLS_BENCH_JOURNAL_H_

// The journal of acknowledged writes that crm-bench's day and overload workloads keep, and
// that `--workload day-check` (CheckDay, tools/bench_day.h) reads back against the services.
// Its lines are listed in tools/bench_day.h, beside the workload that writes most of them.
// Customer n has the phone Phone(n) and the display name DisplayName(n): the check finds it
// by that phone and sends an unanswered create again with the same fields.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "grpcpp/grpcpp.h"

namespace crm::bench {

inline std::string Phone(int64_t n) { return absl::StrFormat("13%09d", n % 1000000000); }
inline std::string DisplayName(int64_t n) { return absl::StrCat("日常客户 ", n); }

// Whether an answer says that nothing was written: a server may answer so only when no part
// of the write can land later. The others (UNAVAILABLE, DEADLINE_EXCEEDED, a lost connection)
// leave the outcome open.
inline bool IsDefiniteRefusal(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNAUTHENTICATED:
      return true;
    default:
      return false;
  }
}

// One line per write(2) on an O_APPEND file: a line is whole in the file or absent, whichever
// process dies. Thread-safe (each line is one system call). An empty path journals nothing.
class Journal {
 public:
  explicit Journal(const std::string& path)
      : fd_(path.empty() ? -1 : ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {}
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  ~Journal() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Whether `path` (the one given to the constructor) was asked for and could not be opened.
  bool failed(const std::string& path) const { return !path.empty() && fd_ < 0; }
  bool enabled() const { return fd_ >= 0; }

  template <typename... Parts>
  void Line(const Parts&... parts) {
    if (fd_ < 0) return;
    const std::string l = absl::StrCat(absl::StrJoin(std::make_tuple(parts...), " "), "\n");
    if (::write(fd_, l.data(), l.size()) != static_cast<ssize_t>(l.size())) std::abort();  // a journal that lies is worse
  }

  // Customer n's create with `request_id` is about to be sent.
  void CreateSent(int64_t n, const std::string& request_id) { Line("I", n, request_id); }
  // Its answer: acknowledged as `name` at `etag`, refused for certain, or left open (nothing
  // written down: the check sends it again).
  void CreateAnswered(int64_t n, const std::string& request_id, const grpc::Status& s, const std::string& name,
                      const std::string& etag) {
    if (s.ok()) {
      Line("C", name, n, request_id);
      Line("V", name, etag);
    } else if (IsDefiniteRefusal(s.error_code())) {
      Line("R", n, static_cast<int>(s.error_code()));
    }
  }

 private:
  int fd_;
};

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_JOURNAL_H_
