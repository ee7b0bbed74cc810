#ifndef CRM_TOOLS_CRMCTL_EXEC_H_
#define CRM_TOOLS_CRMCTL_EXEC_H_

// crmctl's hand-over to a sibling program (crm-ops) for verbs it does not carry itself.
#include <string>

#include "absl/status/status.h"

namespace crm::ctl {

// Replaces this process with `program` (a file name, no slash) given argv unchanged, argv[0]
// included (so the program's usage lines name the command that was typed): the program in this
// executable's folder (/proc/self/exe) when there is an entry of that name, else the first
// executable one in $PATH (empty and relative entries skipped). No shell runs, and since the
// process is replaced, signals and the exit code are the program's. Returns only when nothing
// could be run: NOT_FOUND naming where it looked; FAILED_PRECONDITION when the entry beside
// this executable is not an executable file (a folder, a broken or looping link, no execute
// permission: PATH is not searched then, as it may hold another release's program), or with the
// reason execv refused the file found.
absl::Status ExecSibling(const std::string& program, int argc, char** argv);

}  // namespace crm::ctl

#endif  // CRM_TOOLS_CRMCTL_EXEC_H_
