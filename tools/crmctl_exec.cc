#include "tools/crmctl_exec.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace crm::ctl {
namespace {

namespace fs = std::filesystem;

bool IsExecutableFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

}  // namespace

absl::Status ExecSibling(const std::string& program, int argc, char** argv) {
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const std::string beside = ec ? std::string("(this program's folder is unknown)") : self.parent_path().string();
  if (!ec) {
    // Whatever holds the name beside this program is the one installed with it: when it cannot
    // run, a crm-ops found on PATH may be another release's, so this fails rather than look on.
    const fs::path sibling = self.parent_path() / program;
    std::error_code lec;
    if (fs::exists(fs::symlink_status(sibling, lec))) {
      if (!IsExecutableFile(sibling)) {
        return absl::FailedPreconditionError(absl::StrCat(
            sibling.string(), " is not an executable file (a folder, a broken link or no execute permission)"));
      }
      candidates.push_back(sibling);
    }
  }
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      // A relative entry would run whatever the current folder holds (a data folder, an export's).
      if (fs::path(std::string(dir)).is_absolute()) candidates.push_back(fs::path(std::string(dir)) / program);
    }
  }
  for (const fs::path& c : candidates) {
    if (!IsExecutableFile(c)) continue;
    // argv[0] stays this program's, so the usage lines crm-ops prints name the command typed.
    std::vector<char*> args(argv, argv + argc);
    args.push_back(nullptr);
    ::execv(c.c_str(), args.data());
    return absl::FailedPreconditionError(absl::StrCat("cannot run ", c.string(), ": ", std::strerror(errno)));
  }
  return absl::NotFoundError(
      absl::StrCat(program, " is neither in ", beside, " nor on PATH: install it beside this program"));
}

}  // namespace crm::ctl
