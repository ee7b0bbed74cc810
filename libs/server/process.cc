#include "libs/server/process.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/common/token.h"
#include "libs/server/logging.h"

namespace crm::server {
namespace {

namespace fs = std::filesystem;

constexpr mode_t kGroupAndOther = 077;

absl::Status ErrnoError(absl::string_view what, const std::string& path, int err) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::generic_category().message(err)));
}

// Takes the group and other bits off `path` when this user owns it. lstat, not stat: a
// symbolic link is left alone rather than followed out of the data folder.
absl::Status Tighten(const std::string& path, PrivateDirReport* report) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return ErrnoError("cannot read the mode of", path, errno);
  if (S_ISLNK(st.st_mode) || (st.st_mode & kGroupAndOther) == 0) return absl::OkStatus();
  if (st.st_uid != ::geteuid()) {
    ++report->foreign;
    return absl::OkStatus();
  }
  if (::chmod(path.c_str(), st.st_mode & 07777 & ~kGroupAndOther) != 0) {
    return ErrnoError("cannot change the mode of", path, errno);
  }
  ++report->tightened;
  return absl::OkStatus();
}

}  // namespace

void RestrictNewFileModes() { ::umask(kGroupAndOther); }

absl::StatusOr<PrivateDirReport> PreparePrivateDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  PrivateDirReport report;
  // The folder itself first: once it is 0700 nobody else can reach what is below it, so
  // nothing below can be swapped for a link while the walk runs.
  if (absl::Status s = Tighten(dir, &report); !s.ok()) return s;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot read ", dir, ": ", ec.message()));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (absl::Status s = Tighten(it->path().string(), &report); !s.ok()) return s;
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot read ", dir, ": ", ec.message()));
  return report;
}

void PrepareDataDirOrExit(const std::string& dir) {
  absl::StatusOr<PrivateDirReport> r = PreparePrivateDir(dir);
  if (!r.ok()) ExitWithError(std::string(r.status().message()));
  if (r->tightened > 0) {
    LogInfo(absl::StrCat(dir, ": took group and other permissions off ", r->tightened,
                         " folders and files"));
  }
  if (r->foreign > 0) {
    // A Kubernetes volume's mount point is root's: expected, so not a warning.
    LogInfo(absl::StrCat(dir, ": ", r->foreign, " folders or files belong to another user and keep their modes"));
  }
}

TokenPolicy TokenPolicyOrExit(const std::string& max_lifetime) {
  absl::StatusOr<absl::Duration> d = ParseMaxTokenLifetime(max_lifetime);
  if (!d.ok()) ExitWithError(absl::StrCat("--max-token-lifetime: ", d.status().message()));
  return TokenPolicy{.max_lifetime = *d};
}

absl::StatusOr<std::string> LoadProcessSigningKey(const std::string& key_file, bool create) {
  if (const char* env = std::getenv("CRM_SIGNING_KEY"); env != nullptr && *env != '\0') {
    std::string key(absl::StripAsciiWhitespace(env));
    if (key.size() < 32) return absl::InvalidArgumentError("CRM_SIGNING_KEY is shorter than 32 bytes");
    return key;
  }
  return LoadSigningKey(key_file, create);
}

void ExitWithError(const std::string& message) {
  const std::string line = JsonLogLine("error", message);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stdout);
  std::exit(2);
}

}  // namespace crm::server
