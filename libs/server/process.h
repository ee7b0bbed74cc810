#ifndef CRM_LIBS_SERVER_PROCESS_H_
#define CRM_LIBS_SERVER_PROCESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "libs/common/token.h"

namespace crm::server {

// Makes every file and folder this process creates private to its user (umask 077: folders
// 0700, files 0600): the log, the projections, the signing key, scratch folders and exports
// hold personal data. The umask is process-wide and also covers what libraries create
// (RocksDB asks for 0644 files). Call first thing in every main, before any thread starts.
void RestrictNewFileModes();

// What PreparePrivateDir found.
struct PrivateDirReport {
  // Folders and files whose group or other permission bits were taken off.
  int tightened = 0;
  // Entries left as they were because another user owns them (e.g. the mount point of a
  // Kubernetes volume, owned by root with the pod's fsGroup).
  int foreign = 0;
};

// Creates `dir` and its missing parents with mode 0700, then takes the group and other
// permission bits off `dir` and every folder and file below it that this user owns, so that
// a data folder written by an older version (0755 folders, 0644 files) becomes private too.
// Symbolic links are neither followed nor changed. The walk costs one lstat per entry (a data
// folder holds hundreds of files, not millions). INTERNAL naming the path when a folder
// cannot be created or read or a mode cannot be changed.
absl::StatusOr<PrivateDirReport> PreparePrivateDir(const std::string& dir);

// A server's data folder at start: PreparePrivateDir, logging what it tightened and what it
// left to another user, or ExitWithError when it fails. Call after InitJsonLogging.
void PrepareDataDirOrExit(const std::string& dir);

// The token policy of a server whose --max-token-lifetime flag is `max_lifetime`, or
// ExitWithError naming the flag when it is no valid lifetime (ParseMaxTokenLifetime).
TokenPolicy TokenPolicyOrExit(const std::string& max_lifetime);

// The token signing key of a server process: $CRM_SIGNING_KEY when set, else the file at
// `key_file`, created with a random key when missing and `create` is true.
absl::StatusOr<std::string> LoadProcessSigningKey(const std::string& key_file, bool create);

// Prints `message` to stderr as one JSON log line at level error (PII masked, like every log
// line) and exits with status 2 (bad configuration).
[[noreturn]] void ExitWithError(const std::string& message);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_PROCESS_H_
