#ifndef CRM_LIBS_COMMON_STATUS_MACROS_H_
#define CRM_LIBS_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Abseil 20220623 ships no status macros; these are ours.

// Evaluates `expr` (an absl::Status); returns it from the enclosing function when not OK.
#define CRM_RETURN_IF_ERROR(expr)                        \
  do {                                                   \
    if (::absl::Status crm_status_ = (expr); !crm_status_.ok()) \
      return crm_status_;                                \
  } while (0)

#define CRM_STATUS_CONCAT_INNER_(a, b) a##b
#define CRM_STATUS_CONCAT_(a, b) CRM_STATUS_CONCAT_INNER_(a, b)

// `lhs` may be a declaration (`auto x`) or an existing lvalue. Evaluates `rexpr` (an
// absl::StatusOr<T>); returns its status when not OK, else moves the value into `lhs`.
#define CRM_ASSIGN_OR_RETURN(lhs, rexpr) \
  CRM_ASSIGN_OR_RETURN_IMPL_(CRM_STATUS_CONCAT_(crm_statusor_, __LINE__), lhs, rexpr)

#define CRM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // CRM_LIBS_COMMON_STATUS_MACROS_H_
