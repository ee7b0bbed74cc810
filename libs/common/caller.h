#ifndef CRM_LIBS_COMMON_CALLER_H_
#define CRM_LIBS_COMMON_CALLER_H_

// Who calls, and the record visibility rule every service shares (docs/architecture.md §5). Which roles may
// call an RPC at all is the permission matrix (proto/crm/common/v1/access.proto, checked by the
// gRPC runtime); this file decides, for a caller the matrix admitted, which records they see,
// change and hand out, and which rows a list or report shows them. It fails closed: a token
// without a team matches no team, a manager without a team sees nothing, and a role this file
// does not know sees nothing.
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace crm {

// From the verified token, and until when the call may still be answered.
struct Caller {
  std::string user_id;
  std::string role;  // rep, manager, admin, service
  std::string team;
  // The call's deadline: work for it that has not started by then is not started (a command
  // waiting for its aggregate's lease is refused, writing nothing). Reactions and schedulers,
  // which no client waits for, keep the default. Default: none.
  absl::Time deadline = absl::InfiniteFuture();
};

// How far a caller sees, widest last.
enum class Reach {
  kNone,  // nothing: a manager without a team, an unknown role
  kOwn,   // their own records (and their team's pool and queues): reps
  kTeam,  // their team's records, and their own: managers with a team
  kAll,   // every record: admins and services
};

inline Reach ReachOf(const Caller& c) {
  if (c.role == "admin" || c.role == "service") return Reach::kAll;
  if (c.role == "manager") return c.team.empty() ? Reach::kNone : Reach::kTeam;
  if (c.role == "rep") return Reach::kOwn;
  return Reach::kNone;
}

inline bool IsPrivileged(const Caller& c) { return ReachOf(c) == Reach::kAll; }

// Whether `c` is a member of `team`; never for an empty team on either side, so that two
// records (or a token and a record) without a team are not taken for one team.
inline bool InTeam(const Caller& c, absl::string_view team) { return !c.team.empty() && team == c.team; }

// Whether `c` acts for the whole of `team`: admins and services for every team, a manager
// for their own (approving, correcting payments, counting a team's work).
inline bool ManagesTeam(const Caller& c, absl::string_view team) {
  const Reach r = ReachOf(c);
  return r == Reach::kAll || (r == Reach::kTeam && InTeam(c, team));
}

// A record as the visibility rule sees it.
struct RecordRef {
  absl::string_view owner;  // its owner or assignee; empty when it has none
  absl::string_view team;
  // In the public pool (customers, leads): seen by its team, or by everyone when it has no
  // team, and changed by nobody below a manager until claimed.
  bool in_pool = false;
  absl::string_view creator;  // tasks and tickets: their creator keeps them too
  // Tasks: the role whose queue (in `team`) the record waits in when it has no owner.
  absl::string_view queue_role;
};

// Whether `c` waits on the queue of `role` in `team`: its role is `role` and it is in `team`.
inline bool InQueue(const Caller& c, absl::string_view role, absl::string_view team) {
  return !role.empty() && role == c.role && ReachOf(c) != Reach::kNone && InTeam(c, team);
}

namespace caller_internal {
// What the caller's reach alone decides about a record of `team`: every record for admins
// and services, the team's for its manager, nothing for kNone; nullopt when the record's
// relation to the caller decides.
inline std::optional<bool> ByReach(const Caller& c, absl::string_view team) {
  switch (ReachOf(c)) {
    case Reach::kAll: return true;
    case Reach::kNone: return false;
    case Reach::kTeam:
      if (InTeam(c, team)) return true;
      return std::nullopt;
    case Reach::kOwn: return std::nullopt;
  }
  return false;
}
// Whether the caller owns or created the record.
inline bool Mine(const Caller& c, const RecordRef& r) {
  return !c.user_id.empty() && (r.owner == c.user_id || r.creator == c.user_id);
}
}  // namespace caller_internal

// Admins and services see every record; managers their team's; reps and managers their
// own, the tasks waiting on their queue, and the records of their team's pool (a pool record
// without a team is everyone's).
inline bool SeesRecord(const Caller& c, const RecordRef& r) {
  if (std::optional<bool> decided = caller_internal::ByReach(c, r.team)) return *decided;
  if (r.in_pool) return r.team.empty() || InTeam(c, r.team);
  return caller_internal::Mine(c, r) || (r.owner.empty() && InQueue(c, r.queue_role, r.team));
}
inline bool SeesRecord(const Caller& c, absl::string_view owner, absl::string_view team, bool in_pool = false) {
  return SeesRecord(c, RecordRef{.owner = owner, .team = team, .in_pool = in_pool});
}

// Admins and services change every record; managers their team's; reps and managers their
// own (owned or created), but not pool records (they claim them first). Waiting on a task's
// queue is not enough to change it (see InQueue).
inline bool EditsRecord(const Caller& c, const RecordRef& r) {
  if (std::optional<bool> decided = caller_internal::ByReach(c, r.team)) return *decided;
  return !r.in_pool && caller_internal::Mine(c, r);
}
inline bool EditsRecord(const Caller& c, absl::string_view owner, absl::string_view team, bool in_pool = false) {
  return EditsRecord(c, RecordRef{.owner = owner, .team = team, .in_pool = in_pool});
}

// Whether `c` may give a record to (owner, team) (`owner` empty: to the team's pool): admins
// and services to anyone, managers within their team, reps only to themselves in their own
// team.
inline bool MayAssign(const Caller& c, absl::string_view owner, absl::string_view team) {
  switch (ReachOf(c)) {
    case Reach::kAll: return true;
    case Reach::kTeam: return InTeam(c, team);
    case Reach::kOwn: return !c.user_id.empty() && owner == c.user_id && team == c.team;
    case Reach::kNone: return false;
  }
  return false;
}

// The rows a list or report shows: those of `owner_id` (when not empty) and of `team_id`
// (when not empty); both empty is every row.
struct RowFilter {
  Reach reach = Reach::kNone;  // the reach applied
  std::string owner_id;
  std::string team_id;
};

// The filter for a caller who asks for the rows of `wanted` reach (kNone: the widest their
// role allows) narrowed to `owner_id` and `team_id` (either may be empty). PERMISSION_DENIED
// when the caller sees nothing (ReachOf is kNone), when `wanted` is wider than their reach,
// or when the owner or team asked for is outside it. A rep's rows are their own; a manager's
// their team's (kOwn: their own within it); admins and services may ask for any.
absl::StatusOr<RowFilter> FilterRows(const Caller& c, Reach wanted, absl::string_view owner_id,
                                     absl::string_view team_id);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_CALLER_H_
