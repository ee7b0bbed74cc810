#include "libs/projection/follower.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/common/thread_name.h"

namespace crm::projection {

absl::StatusOr<std::unique_ptr<Follower>> Follower::Start(eventlog::Log* log, ProjectionDb* db, Options options,
                                                         ProjectionDb::ApplyFn apply) {
  if (options.topic.empty()) return absl::InvalidArgumentError("Follower needs a topic");
  std::unique_ptr<Follower> f(new Follower(log, db, std::move(options), std::move(apply)));
  absl::StatusOr<int32_t> partitions = log->PartitionCount(f->options_.topic);
  if (partitions.ok()) {
    CRM_ASSIGN_OR_RETURN(int64_t n, db->CatchUp(*log, f->options_.topic, f->apply_, f->options_.batch_records));
    absl::MutexLock l(&f->mu_);
    f->applied_ = n;
  } else if (!absl::IsNotFound(partitions.status())) {
    return partitions.status();
  }
  f->thread_ = std::thread([raw = f.get()] { raw->Run(); });
  return f;
}

Follower::~Follower() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    if (sub_ != nullptr) sub_->Wake();
  }
  if (thread_.joinable()) thread_.join();
}

int64_t Follower::applied() const {
  absl::MutexLock l(&mu_);
  return applied_;
}

absl::Status Follower::status() const {
  absl::MutexLock l(&mu_);
  return status_;
}

void Follower::Run() {
  NameThisThread(absl::StrCat("f:", options_.topic));
  for (;;) {
    absl::Status s = Follow();
    absl::MutexLock l(&mu_);
    if (stop_) return;
    status_ = std::move(s);
    // Wait before retrying, unless asked to stop meanwhile.
    mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.retry_after);
    if (stop_) return;
  }
}

absl::Status Follower::Follow() {
  CRM_ASSIGN_OR_RETURN(int32_t partitions, log_->PartitionCount(options_.topic));
  std::vector<eventlog::Position> from;
  for (int32_t p = 0; p < partitions; ++p) from.push_back({p, db_->NextOffset(options_.topic, p)});
  CRM_ASSIGN_OR_RETURN(std::unique_ptr<eventlog::Subscription> sub, log_->Subscribe(options_.topic, from));
  {
    absl::MutexLock l(&mu_);
    if (stop_) return absl::OkStatus();
    sub_ = sub.get();
    status_ = absl::OkStatus();
  }
  absl::Status status;
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (stop_) break;
    }
    absl::StatusOr<std::vector<eventlog::Record>> recs = sub->Poll(options_.batch_records, options_.poll_timeout);
    if (!recs.ok()) {
      status = recs.status();
      break;
    }
    status = db_->ApplyAndCommit(options_.topic, *recs, apply_);
    if (!status.ok()) break;
    if (options_.after_commit && !recs->empty()) options_.after_commit(*recs);
    absl::MutexLock l(&mu_);
    applied_ += static_cast<int64_t>(recs->size());
  }
  absl::MutexLock l(&mu_);
  sub_ = nullptr;
  return status;
}

}  // namespace crm::projection
