#include "libs/common/caller.h"

namespace crm {

absl::StatusOr<RowFilter> FilterRows(const Caller& c, Reach wanted, absl::string_view owner_id,
                                     absl::string_view team_id) {
  const Reach mine = ReachOf(c);
  if (mine == Reach::kNone) {
    return absl::PermissionDeniedError(c.role == "manager" ? "a manager without a team sees no team's records"
                                                           : "the token's role sees no records");
  }
  if (wanted == Reach::kNone) wanted = mine;
  if (wanted > mine) {
    return absl::PermissionDeniedError(wanted == Reach::kAll ? "only admins see every team's records"
                                                             : "a rep sees their own records; managers their team's");
  }
  RowFilter f{wanted, std::string(owner_id), std::string(team_id)};
  switch (wanted) {
    case Reach::kOwn:
      if (mine != Reach::kAll && !f.owner_id.empty() && f.owner_id != c.user_id) {
        return absl::PermissionDeniedError("a rep sees their own records");
      }
      if (f.owner_id.empty()) f.owner_id = c.user_id;
      break;
    case Reach::kTeam:
      if (mine == Reach::kTeam) {
        if (!f.team_id.empty() && f.team_id != c.team) {
          return absl::PermissionDeniedError("a manager sees their own team's records");
        }
        f.team_id = c.team;
      }
      break;
    case Reach::kAll:
    case Reach::kNone: break;
  }
  return f;
}

}  // namespace crm
