#ifndef CRM_LIBS_COMMON_CALLER_H_
#define CRM_LIBS_COMMON_CALLER_H_

// Who calls, and the record visibility rule every service shares (DESIGN §5).
#include <string>

#include "absl/strings/string_view.h"

namespace crm {

// From the verified token.
struct Caller {
  std::string user_id;
  std::string role;  // rep, manager, admin, service
  std::string team;
};

inline bool IsPrivileged(const Caller& c) { return c.role == "admin" || c.role == "service"; }

// Admins and services see every record; managers their team's; reps their own, and the
// records of their team's pool (`in_pool`: without an owner; a pool record without a team is
// everyone's).
inline bool SeesRecord(const Caller& c, absl::string_view owner, absl::string_view team, bool in_pool = false) {
  if (IsPrivileged(c)) return true;
  if (c.role == "manager") return !c.team.empty() && team == c.team;
  if (in_pool) return team.empty() || team == c.team;
  return owner == c.user_id;
}

// Admins and services change every record; managers their team's; reps their own, but not
// pool records (they claim them first).
inline bool EditsRecord(const Caller& c, absl::string_view owner, absl::string_view team, bool in_pool = false) {
  if (IsPrivileged(c)) return true;
  if (c.role == "manager") return !c.team.empty() && team == c.team;
  return !in_pool && owner == c.user_id;
}

// Whether `c` may give a record to (owner, team): admins and services to anyone, managers
// within their team, reps only to themselves in their own team.
inline bool MayAssign(const Caller& c, absl::string_view owner, absl::string_view team) {
  if (IsPrivileged(c)) return true;
  if (c.role == "manager") return team == c.team;
  return owner == c.user_id && team == c.team;
}

}  // namespace crm

#endif  // CRM_LIBS_COMMON_CALLER_H_
