#ifndef CRM_LIBS_PROJECTION_FOLLOWER_H_
#define CRM_LIBS_PROJECTION_FOLLOWER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"

namespace crm::projection {

// Keeps a projection of another service's topic current (docs/architecture.md §4: a service reacts to
// others' events): a thread reads every partition of `topic` from the projection's
// checkpoints and applies each record through `apply`, committing each poll's records with
// their checkpoints in one batch, so effects are exactly once across restarts. Callers wait
// for it with ProjectionDb::WaitFor / NotifyWhenReached on a consistency token that names the
// topic (read-your-writes across services). Thread-safe.
class Follower {
 public:
  struct Options {
    // The topic to follow. Required.
    std::string topic;
    // Records per poll and commit. Default: 1024.
    size_t batch_records = 1024;
    // How long a poll waits for records. Default: 200 ms.
    absl::Duration poll_timeout = absl::Milliseconds(200);
    // Pause before retrying after an error (topic missing, log unreachable, a record the
    // projection refused). Default: 1 s.
    absl::Duration retry_after = absl::Seconds(1);
    // Called on the follower's thread with each poll's records once they are committed (not
    // for the catch-up in Start): reactions to another service's events. A crash can come
    // between the commit and the call, so a reaction must also be derivable from the
    // projection (the caller reconciles at start). Default: none.
    std::function<void(const std::vector<eventlog::Record>&)> after_commit;
  };

  // Catches `db` up with the topic's current end when the topic exists (blocking, so a
  // service starts with its view of the other services complete), then follows it on a
  // thread of its own. A topic that does not exist yet is waited for. Fails with the
  // catch-up's error, e.g. a record `apply` refuses (a service should not start on a view it
  // cannot complete). `log` and `db` must outlive the follower.
  static absl::StatusOr<std::unique_ptr<Follower>> Start(eventlog::Log* log, ProjectionDb* db, Options options,
                                                         ProjectionDb::ApplyFn apply);
  ~Follower();

  // Records applied since Start (catch-up included).
  int64_t applied() const;
  // OK while following; else the last error, e.g. a record `apply` refused (see
  // ProjectionDb::ApplyAndCommit): the follower retries it every retry_after without skipping
  // it (a poison record halts the projection visibly instead of losing an effect).
  absl::Status status() const;

 private:
  Follower(eventlog::Log* log, ProjectionDb* db, Options o, ProjectionDb::ApplyFn apply)
      : log_(log), db_(db), options_(std::move(o)), apply_(std::move(apply)) {}
  void Run();
  // One subscription's life: polls and applies until stopped or an error.
  absl::Status Follow();

  eventlog::Log* log_;
  ProjectionDb* db_;
  const Options options_;
  const ProjectionDb::ApplyFn apply_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  eventlog::Subscription* sub_ ABSL_GUARDED_BY(mu_) = nullptr;  // to Wake() on stop
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  int64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_FOLLOWER_H_
