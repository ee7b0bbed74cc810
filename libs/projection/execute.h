#ifndef CRM_LIBS_PROJECTION_EXECUTE_H_
#define CRM_LIBS_PROJECTION_EXECUTE_H_

// One command on one aggregate, the way every service engine runs it (docs/architecture.md §3): after the
// commands before it on the aggregate, read the state row, answer a repeated request_id with
// the state, decide, append the events durably and answer with the state the projection
// folded and the consistency token.
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "libs/common/caller.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rows.h"

namespace crm::projection {

template <typename State>
struct Written {
  State state;
  std::string token;  // empty when nothing was appended
};

// Why a command runs, when it is not a plain API call.
struct Cause {
  common::v1::ActorSource source = common::v1::ACTOR_SOURCE_API;
  std::string causation_id;
  std::string correlation_id;                     // default: the request id
  absl::Time occurred_at = absl::InfinitePast();  // default: now
};

// The committed state row `key`; nullopt when absent.
template <typename State>
absl::StatusOr<absl::optional<State>> ReadStateRow(rocksdb::DB* db, const std::string& key) {
  State s;
  auto found = ReadRow(db, rocksdb::ReadOptions(), key, &s);
  if (!found.ok()) return found.status();
  if (!*found) return absl::optional<State>();
  return absl::optional<State>(std::move(s));
}

// `K` describes the aggregate: K::kType (aggregate type), K::Row(id) (its state row) and
// K::Visible(caller, state) (whether a repeat may show the state to the caller). `decide`
// gets the state (null when none) and returns the events; none means nothing to record.
// `done` runs on the log writer's thread (or the caller's when nothing is appended).
template <typename K, typename State, typename Event>
void Execute(AggregateWriter* writer, const Caller& caller, const std::string& id, const std::string& request_id,
             absl::AnyInvocable<absl::StatusOr<std::vector<Event>>(const State*)> decide,
             absl::AnyInvocable<void(absl::StatusOr<Written<State>>)> done, Cause cause = {}) {
  writer->Serialize(id, [writer, caller, id, request_id, decide = std::move(decide), done = std::move(done),
                         cause = std::move(cause)]() mutable {
    rocksdb::DB* db = writer->db()->db();
    auto fail = [&](absl::Status s) {
      writer->Release(id);
      done(std::move(s));
    };
    auto state = ReadStateRow<State>(db, K::Row(id));
    if (!state.ok()) return fail(state.status());
    const State* cur = state->has_value() ? &**state : nullptr;
    if (!request_id.empty() && cur != nullptr) {
      auto seen = SeenRequest(db, request_id, id);
      if (!seen.ok()) return fail(seen.status());
      if (*seen) {
        if (!K::Visible(caller, *cur)) {
          return fail(absl::PermissionDeniedError("the resource belongs to another owner or team"));
        }
        writer->Release(id);
        return done(Written<State>{*cur, ""});
      }
    }
    auto decided = decide(cur);
    if (!decided.ok()) return fail(decided.status());
    if (decided->empty()) {
      writer->Release(id);
      return done(Written<State>{cur ? *cur : State(), ""});
    }
    AggregateHead head{K::kType, id, cur ? cur->version() : 0, cur ? cur->last_hash() : ""};
    const auto ctx = WriteContext::For(caller, cause.source,
                                       cause.correlation_id.empty() ? request_id : cause.correlation_id,
                                       cause.causation_id);
    writer->Append(head, ctx, NewEvent::All(*decided, cause.occurred_at),
                   [writer, id, done = std::move(done)](absl::StatusOr<std::string> token) mutable {
                     absl::StatusOr<Written<State>> out = absl::UnknownError("");
                     if (!token.ok()) {
                       out = token.status();
                     } else if (auto st = ReadStateRow<State>(writer->db()->db(), K::Row(id)); !st.ok()) {
                       out = st.status();
                     } else if (!st->has_value()) {
                       out = absl::InternalError("aggregate vanished after its write");
                     } else {
                       out = Written<State>{**std::move(st), *std::move(token)};
                     }
                     writer->Release(id);
                     done(std::move(out));
                   });
  });
}

// A `done` for Execute that answers with `engine->ToApi(state)` and the consistency token.
template <typename State, typename Api, typename Engine>
absl::AnyInvocable<void(absl::StatusOr<Written<State>>)> Reply(const Engine* engine,
                                                              absl::AnyInvocable<void(absl::StatusOr<Api>)> done) {
  return [engine, done = std::move(done)](absl::StatusOr<Written<State>> w) mutable {
    if (!w.ok()) return done(w.status());
    Api a = engine->ToApi(w->state);
    a.set_consistency_token(w->token);
    done(std::move(a));
  };
}

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_EXECUTE_H_
