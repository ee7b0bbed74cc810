#ifndef CRM_LIBS_COMMON_THREAD_NAME_H_
#define CRM_LIBS_COMMON_THREAD_NAME_H_

#include "absl/strings/string_view.h"

namespace crm {

// Names the calling thread as `top -H`, `perf` and /proc/<pid>/task/<tid>/comm show it.
// Linux keeps 15 bytes; a longer name keeps its first 15. Best effort: never fails.
void NameThisThread(absl::string_view name);

}  // namespace crm

#endif  // CRM_LIBS_COMMON_THREAD_NAME_H_
