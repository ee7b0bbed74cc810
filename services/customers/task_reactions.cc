// What the customers service takes from the tasks topic: a completed task's note (跟进结果)
// becomes a follow-up record (跟进记录) on its customer, written by the person who completed
// the task and caused by the TaskCompleted event. Depends on the tasks' event schemas only.

#include "absl/strings/str_cat.h"
#include "crm/tasks/v1/tasks_events.pb.h"
#include "libs/common/completions.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/pending_rows.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the engine's own helpers

absl::Status ApplyTasksRecordForCustomers(projection::ProjectionDb& db, const eventlog::Record& record,
                                          projection::Batch& b) {
  CRM_ASSIGN_OR_RETURN(common::v1::EventEnvelope e, eventlog::DecodeEnvelope(record.value));
  if (e.event_type() != tasks::v1::TaskCompleted::descriptor()->full_name()) return absl::OkStatus();
  tasks::v1::TaskCompleted done;
  if (!e.payload().UnpackTo(&done)) return absl::DataLossError("bad payload of TaskCompleted");
  if (done.note().empty() || done.customer_id().empty()) return absl::OkStatus();
  // Pending until a customer event caused by it exists (a rebuild reads the customers topic
  // first, so then the note is never pending).
  std::string unused;
  absl::Status recorded = db.Get(b, rows::CausedBy(e.event_id()), &unused);
  if (!recorded.ok() && !absl::IsNotFound(recorded)) return recorded;
  if (recorded.ok()) return absl::OkStatus();
  v1::PendingFollowUp p;
  p.set_customer_id(done.customer_id());
  auto* f = p.mutable_follow_up();
  f->set_follow_up_id(DerivedId("followups", e.event_id()));
  f->set_channel(v1::FOLLOW_UP_CHANNEL_OTHER);
  f->set_summary(done.note().substr(0, 2000));
  *p.mutable_occurred_at() = e.occurred_at();
  p.set_author_id(e.actor().user_id());
  p.set_author_team_id(e.actor().team_id());
  b.Put(absl::StrCat(rows::kPendingNotes, e.event_id()), p.SerializeAsString());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CustomerEngine::ReconcileTaskNotes() {
  // TaskCompleted event id, note.
  CRM_ASSIGN_OR_RETURN(auto pending, projection::ReadPendingRows<v1::PendingFollowUp>(db_->db(), rows::kPendingNotes,
                                                                                      "pending follow-up"));
  if (pending.empty()) return 0;
  Completions batch(static_cast<int>(pending.size()));
  const absl::Time now = options_.clock->Now();
  for (auto& [cause, p] : pending) {
    // A merged customer's notes go to its survivor.
    std::string id = p.customer_id();
    for (int hops = 0; hops < 16; ++hops) {
      auto s = ReadCustomer(db_->db(), rocksdb::ReadOptions(), id);
      if (!s.ok() || !s->has_value() || (*s)->merged_into().empty()) break;
      id = (*s)->merged_into();
    }
    // The completer writes it, as a service (the task's permission check was the tasks
    // service's).
    const Caller author{p.author_id(), "service", p.author_team_id()};
    RecordFollowUp cmd{p.follow_up(), FromProto(p.occurred_at()), now};
    auto decide = [author, cmd, cause = cause](const CustomerState* cur) -> absl::StatusOr<Decided> {
      Decided d;
      d.causation_id = cause;
      d.occurred_at = cmd.when;
      // Waits while the customer is unknown, in the recycle bin or purged.
      if (cur == nullptr || cur->deleted() || cur->purged()) return d;
      CRM_ASSIGN_OR_RETURN(d.events, Decide(cur, author, cmd));
      return d;
    };
    Execute(author, common::v1::ACTOR_SOURCE_AUTOMATION, {.id = id}, std::move(decide),
            [done = batch.handle()](absl::StatusOr<Written> w) { done.Done(w.status(), w.ok() && !w->token.empty()); });
  }
  absl::Status status = batch.Wait(absl::Now() + options_.batch_timeout);
  CRM_RETURN_IF_ERROR(status);
  return batch.written();
}

}  // namespace crm::customers
