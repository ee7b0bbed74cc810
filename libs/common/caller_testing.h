#ifndef CRM_LIBS_COMMON_CALLER_TESTING_H_
#define CRM_LIBS_COMMON_CALLER_TESTING_H_

// The callers tests of the service engines act as (tests only): two reps and a manager of one
// team, and an admin of none, so that a test of who sees what names the same people everywhere.
#include "libs/common/caller.h"

namespace crm::testing {

inline const Caller kRep{"u1", "rep", "east"};
// A second rep of kRep's team: sees the team's pool but not kRep's own customers.
inline const Caller kRep2{"u2", "rep", "east"};
inline const Caller kManager{"m1", "manager", "east"};
inline const Caller kAdmin{"a1", "admin", ""};

}  // namespace crm::testing

#endif  // CRM_LIBS_COMMON_CALLER_TESTING_H_
