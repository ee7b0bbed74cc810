#ifndef CRM_LIBS_EVENTLOG_SEAL_H_
#define CRM_LIBS_EVENTLOG_SEAL_H_

// Seals: signed checkpoints of the log's partitions that make tampering detectable by someone
// who can write the log's files but not the seal key. The per-aggregate hash chain in the
// envelopes is unkeyed: whoever rewrites an event can recompute it, and removing an
// aggregate's last event leaves a valid chain. A seal signs, per partition, the offset reached
// and a running hash over every record before it, so rewriting, removing or reordering any
// sealed record is seen. Ed25519 rather than HMAC: a verifier (an auditor's crmctl verify)
// needs only the public key, which cannot make seals.
//
// The guarantee: every record below the offsets of the latest seal is as it was sealed. The
// records after it (appended since; at most the seal interval and the hashing behind it
// before a crash, none after a clean stop) are covered by the unkeyed chains only. Whoever
// can replace the seal folder with an older copy can make the log lose its tail unnoticed
// unless a newer seal is kept elsewhere: seals are also published on kSealTopic, for
// consumers that archive them.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/eventlog/v1/seal.pb.h"
#include "libs/eventlog/log.h"
#include "libs/topics/topics.h"

namespace crm::eventlog {

// Where seals are published, one record each (key "seal", value a SignedSeal).
inline constexpr const char* kSealTopic = topics::kSeals;

// An Ed25519 key: private (signs and verifies) or public (verifies). Copyable, thread-safe.
class SealKey {
 public:
  // Loads the PEM private key at `path`. With `create`, a missing file is created with a new
  // key, readable by its owner only. NOT_FOUND when missing; INVALID_ARGUMENT when the file
  // holds no Ed25519 private key.
  static absl::StatusOr<SealKey> LoadPrivate(const std::string& path, bool create);
  // Loads the PEM public key at `path`, or the public half of a PEM private key there.
  static absl::StatusOr<SealKey> LoadPublic(const std::string& path);

  bool can_sign() const { return private_; }
  // FAILED_PRECONDITION for a public key.
  absl::StatusOr<std::string> Sign(absl::string_view message) const;
  bool Verify(absl::string_view message, absl::string_view signature) const;
  // Lower-case hex SHA-256 of the raw public key.
  const std::string& key_id() const { return key_id_; }

 private:
  // A PEM private key, or (unless `want_private`) a public key or the public half of a
  // private one.
  static absl::StatusOr<SealKey> Load(const std::string& path, bool want_private);

  std::shared_ptr<void> key_;  // EVP_PKEY
  bool private_ = false;
  std::string key_id_;
};

// The running hash of a partition after `record`, given `prev`, the hash after the record
// before it (empty or 32 zero bytes before the first). See PartitionSeal.chain_hash.
std::string ChainRecord(absl::string_view prev, int64_t offset, absl::string_view key, absl::string_view value);

// The latest seal of the folder `dir`, its signature checked with `key`. NOT_FOUND when there
// is none; DATA_LOSS when it is unreadable, signed by another key, or its signature fails.
struct OpenedSeal {
  v1::Seal seal;
  std::string signed_bytes;  // the SignedSeal as stored
};
absl::StatusOr<OpenedSeal> ReadLatestSeal(const std::string& dir, const SealKey& key);

// Checks a partition's records against a seal as a verifier reads them (any interleaving of
// partitions, each partition's records in offset order from 0). Not thread-safe.
class SealCheck {
 public:
  // `seal` must outlive the check.
  explicit SealCheck(const v1::Seal& seal);
  // Takes the next record of its partition.
  void Add(const Record& record);
  // The problems found: sealed records missing, out of place or not as sealed; one line each.
  std::vector<std::string> Finish();
  // Records read past the latest seal (not covered by it).
  int64_t unsealed() const { return unsealed_; }

 private:
  struct Head {
    int64_t next = 0;
    std::string hash;
    const v1::PartitionSeal* sealed = nullptr;
  };
  std::map<std::pair<std::string, int32_t>, Head> heads_;
  std::vector<std::string> problems_;
  int64_t unsealed_ = 0;
};

// Keeps the seals of a log's topics: checks the latest one when it starts, then seals every
// `interval` in a thread of its own, off the append path, and once more when destroyed.
class Sealer {
 public:
  struct Options {
    // The topics to seal (each while it exists). Required.
    std::vector<std::string> topics;
    // The seal folder: latest.seal, replaced atomically. Keep it apart from the log's files
    // (another volume, or copied off the machine). Required.
    std::string dir;
    // How often to seal what was appended since the last seal. Default: 1 s.
    absl::Duration interval = absl::Seconds(1);
    // Also publish each seal on kSealTopic of the log. Default: true.
    bool publish = true;
    // When the log ends before a sealed offset (it lost sealed records), carry on: the
    // partition is hashed again from its first record and `on_audit` says what was lost.
    // Only for an operator who accepted the loss. Default: false: Start refuses (DATA_LOSS).
    bool accept_truncation = false;
    // Lines for the operator's audit trail (an accepted loss, a failed seal). Default: none.
    std::function<void(const std::string& line)> on_audit;
  };

  // Starts sealing `log` (which must outlive the sealer) with the private `key`. Refuses
  // (DATA_LOSS) a seal folder whose latest seal was not made with `key` or fails its
  // signature, an empty seal folder beside a log that published seals, and a log whose
  // records are not as sealed: every sealed record is read and hashed again, so this takes
  // time in proportion to the log (see accept_truncation).
  static absl::StatusOr<std::unique_ptr<Sealer>> Start(Log* log, SealKey key, Options options);
  // Seals what was appended since the last seal, then stops.
  ~Sealer();

  // Hashes what was appended since the last seal and writes a new seal if anything was.
  // Called by the sealer's thread; public for tests.
  absl::Status SealNow();
  // The sequence number of the latest seal written (0: none yet).
  int64_t sequence() const;

 private:
  Sealer(Log* log, SealKey key, Options options) : log_(log), key_(std::move(key)), options_(std::move(options)) {}
  void Loop();
  // Hashes `topic` from where the sealer stands to the log's end; `check`, when given, also
  // takes each record.
  absl::Status CatchUp(const std::string& topic, bool* moved, SealCheck* check = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Write() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Log* log_;
  const SealKey key_;
  const Options options_;
  std::unique_ptr<Writer> publisher_;
  struct Head {
    int64_t next = 0;  // the offset after the last record hashed
    std::string hash;  // the running hash up to it
  };
  mutable absl::Mutex mu_;  // serialises SealNow; guards the state below
  std::map<std::pair<std::string, int32_t>, Head> heads_ ABSL_GUARDED_BY(mu_);
  int64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::string previous_ ABSL_GUARDED_BY(mu_);  // the latest SignedSeal's bytes
  std::string last_failure_ ABSL_GUARDED_BY(mu_);  // told once, not at every interval
  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread thread_;
};

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_SEAL_H_
