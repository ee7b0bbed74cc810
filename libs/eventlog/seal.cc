#include "libs/eventlog/seal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/base/internal/endian.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/common/proto_time.h"
#include "libs/common/sha256.h"
#include "libs/common/status_macros.h"
#include "libs/common/thread_name.h"
#include "openssl/evp.h"
#include "openssl/pem.h"

namespace crm::eventlog {
namespace {

constexpr char kLatest[] = "latest.seal";

EVP_PKEY* Raw(const std::shared_ptr<void>& k) { return static_cast<EVP_PKEY*>(k.get()); }

std::shared_ptr<void> Own(EVP_PKEY* k) {
  return std::shared_ptr<void>(k, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

absl::StatusOr<std::string> KeyId(EVP_PKEY* k) {
  unsigned char raw[64];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1) return absl::InvalidArgumentError("not an Ed25519 key");
  return absl::BytesToHexString(Sha256({absl::string_view(reinterpret_cast<const char*>(raw), len)}));
}

// A new Ed25519 key in a new file at `path`, readable by its owner only.
absl::Status CreateKeyFile(const std::string& path) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr),
                                                                  EVP_PKEY_CTX_free);
  EVP_PKEY* k = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &k) != 1) {
    return absl::InternalError("cannot generate an Ed25519 key");
  }
  std::shared_ptr<void> owned = Own(k);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  FILE* f = ::fdopen(fd, "w");
  if (f == nullptr) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  const bool ok = PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr) == 1 && std::fflush(f) == 0 &&
                  ::fsync(fd) == 0;
  std::fclose(f);
  if (!ok) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// Writes `bytes` to dir/name through a temporary file and a rename, synced: a crash leaves
// the old file or the new one.
absl::Status ReplaceFile(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string tmp = absl::StrCat(dir, "/", name, ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool ok = done == bytes.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), absl::StrCat(dir, "/", name).c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", dir, "/", name, ": ", std::strerror(errno)));
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SealKey> SealKey::Load(const std::string& path, bool want_private) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("no seal key at ", path));
  EVP_PKEY* k = want_private ? nullptr : PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
  if (k == nullptr) {
    std::rewind(f);
    k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  }
  std::fclose(f);
  std::shared_ptr<void> owned = k == nullptr ? nullptr : Own(k);
  if (k == nullptr || EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds no Ed25519 ", want_private ? "private " : "", "key in PEM"));
  }
  SealKey out;
  out.key_ = std::move(owned);
  out.private_ = want_private;
  CRM_ASSIGN_OR_RETURN(out.key_id_, KeyId(k));
  return out;
}

absl::StatusOr<SealKey> SealKey::LoadPrivate(const std::string& path, bool create) {
  if (create && !std::filesystem::exists(path)) CRM_RETURN_IF_ERROR(CreateKeyFile(path));
  return Load(path, /*want_private=*/true);
}

absl::StatusOr<SealKey> SealKey::LoadPublic(const std::string& path) { return Load(path, /*want_private=*/false); }

absl::StatusOr<std::string> SealKey::Sign(absl::string_view message) const {
  if (!private_) return absl::FailedPreconditionError("a public key cannot sign");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, Raw(key_)) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return absl::InternalError("Ed25519 signing failed");
  }
  sig.resize(len);
  return sig;
}

bool SealKey::Verify(absl::string_view message, absl::string_view signature) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  return ctx != nullptr && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, Raw(key_)) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

std::string ChainRecord(absl::string_view prev, int64_t offset, absl::string_view key, absl::string_view value) {
  static const std::string kZero(32, '\0');
  char off[8], klen[4], vlen[4];
  absl::big_endian::Store64(off, static_cast<uint64_t>(offset));
  absl::big_endian::Store32(klen, static_cast<uint32_t>(key.size()));
  absl::big_endian::Store32(vlen, static_cast<uint32_t>(value.size()));
  return Sha256({prev.empty() ? absl::string_view(kZero) : prev, absl::string_view(off, 8), absl::string_view(klen, 4),
                 key, absl::string_view(vlen, 4), value});
}

absl::StatusOr<OpenedSeal> ReadLatestSeal(const std::string& dir, const SealKey& key) {
  const std::string path = absl::StrCat(dir, "/", kLatest);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("no seal at ", path));
  std::stringstream bytes;
  bytes << in.rdbuf();
  OpenedSeal out;
  out.signed_bytes = bytes.str();
  v1::SignedSeal ss;
  if (!ss.ParseFromString(out.signed_bytes) || !out.seal.ParseFromString(ss.seal())) {
    return absl::DataLossError(absl::StrCat("the seal at ", path, " is unreadable"));
  }
  if (out.seal.key_id() != key.key_id()) {
    return absl::DataLossError(absl::StrCat("the seal at ", path, " was made with another key (", out.seal.key_id(),
                                            ", not ", key.key_id(), ")"));
  }
  if (!key.Verify(ss.seal(), ss.signature())) {
    return absl::DataLossError(absl::StrCat("the seal at ", path, " fails its signature: it was altered"));
  }
  return out;
}

SealCheck::SealCheck(const v1::Seal& seal) {
  for (const v1::PartitionSeal& p : seal.partitions()) heads_[{p.topic(), p.partition()}].sealed = &p;
}

void SealCheck::Add(const Record& r) {
  Head& h = heads_[{r.topic, r.partition}];
  const std::string where = absl::StrCat(r.topic, " partition ", r.partition);
  if (r.offset != h.next && problems_.size() < 20) {
    problems_.push_back(absl::StrCat(where, ": offset ", r.offset, " follows offset ", h.next - 1,
                                     r.offset > h.next ? " (records are missing)" : " (records out of order)"));
  }
  h.hash = ChainRecord(h.hash, r.offset, r.key, r.value);
  h.next = r.offset + 1;
  if (h.sealed == nullptr || h.next > h.sealed->next_offset()) {
    ++unsealed_;
  } else if (h.next == h.sealed->next_offset() && h.hash != h.sealed->chain_hash()) {
    problems_.push_back(absl::StrCat(where, ": the records below offset ", h.next,
                                     " are not those sealed (rewritten, removed or reordered)"));
  }
}

std::vector<std::string> SealCheck::Finish() {
  for (const auto& [where, h] : heads_) {
    if (h.sealed != nullptr && h.next < h.sealed->next_offset()) {
      problems_.push_back(absl::StrCat(where.first, " partition ", where.second, ": the log ends at offset ", h.next,
                                       " but the seal covers records up to offset ", h.sealed->next_offset() - 1,
                                       ": sealed records were removed"));
    }
  }
  return problems_;
}

absl::StatusOr<std::unique_ptr<Sealer>> Sealer::Start(Log* log, SealKey key, Options options) {
  if (!key.can_sign()) return absl::FailedPreconditionError("sealing needs the private seal key");
  if (options.dir.empty() || options.topics.empty()) return absl::InvalidArgumentError("a sealer needs a folder and topics");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", options.dir, ": ", ec.message()));
  std::unique_ptr<Sealer> s(new Sealer(log, std::move(key), std::move(options)));
  bool moved = false;  // hashed records past the latest seal (a new one is due)
  const Options& o = s->options_;
  auto audit = [&o](const std::string& line) {
    if (o.on_audit) o.on_audit(line);
  };
  absl::StatusOr<OpenedSeal> latest = ReadLatestSeal(o.dir, s->key_);
  absl::MutexLock l(&s->mu_);
  if (latest.ok()) {
    s->sequence_ = latest->seal.sequence();
    s->previous_ = latest->signed_bytes;
    // Every sealed record is read and hashed again: a record rewritten, removed or reordered
    // while crmd was stopped is seen before anything is served. O(log size) at each start.
    SealCheck check(latest->seal);
    for (const std::string& topic : o.topics) CRM_RETURN_IF_ERROR(s->CatchUp(topic, &moved, &check));
    const std::vector<std::string> problems = check.Finish();
    if (!problems.empty()) {
      const std::string what = absl::StrCat(
          "the log is not as seal ", latest->seal.sequence(), " (", o.dir, ") says: ", problems.front(),
          problems.size() > 1 ? absl::StrCat(" (and ", problems.size() - 1, " more)") : "");
      if (!o.accept_truncation) {
        return absl::DataLossError(absl::StrCat(
            what, ". Restore the data folder from a backup, or accept the log as it is (crmd --accept-log-truncation)"));
      }
      for (const std::string& p : problems) audit(absl::StrCat("accepted: the log is not as sealed: ", p));
    }
  } else if (absl::IsNotFound(latest.status())) {
    // A folder without a seal beside a log that published seals: the folder was emptied or
    // replaced, and sealing afresh would seal whatever the log holds now.
    absl::StatusOr<std::vector<int64_t>> published = log->EndOffsets(kSealTopic);
    if (published.ok() && !published->empty() && published->front() > 0) {
      const std::string missing = absl::StrCat("the seal folder ", o.dir, " has no seal, but the log published ",
                                               published->front(), " seals before");
      if (!o.accept_truncation) {
        return absl::DataLossError(absl::StrCat(missing, ": restore the seal folder, or accept sealing the log as it is "
                                                         "(crmd --accept-log-truncation)"));
      }
      audit(absl::StrCat("accepted: ", missing, "; sealing the log as it is"));
    }
    for (const std::string& topic : o.topics) CRM_RETURN_IF_ERROR(s->CatchUp(topic, &moved));
  } else {
    return latest.status();
  }
  if (o.publish) {
    CRM_RETURN_IF_ERROR(log->CreateTopic(kSealTopic, 1));
    CRM_ASSIGN_OR_RETURN(s->publisher_, log->OpenWriter(kSealTopic));
  }
  // The log as it was found, sealed at once: after an accepted loss the old seal no longer
  // describes it, and a folder that was never sealed has a seal from the first start on (a
  // missing seal is then always a problem to report).
  if (moved || !latest.ok()) CRM_RETURN_IF_ERROR(s->Write());
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

Sealer::~Sealer() {
  {
    absl::MutexLock l(&stop_mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (absl::Status s = SealNow(); !s.ok() && options_.on_audit) {
    options_.on_audit(absl::StrCat("the last seal before stopping failed: ", s.message()));
  }
}

void Sealer::Loop() {
  NameThisThread("log-seal");
  for (;;) {
    {
      absl::MutexLock l(&stop_mu_);
      if (stop_mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.interval)) return;
    }
    const absl::Status s = SealNow();
    absl::MutexLock l(&mu_);
    const std::string failure = s.ok() ? "" : std::string(s.message());
    if (failure != last_failure_ && options_.on_audit) {
      options_.on_audit(failure.empty() ? "sealing works again" : absl::StrCat("sealing failed: ", failure));
    }
    last_failure_ = failure;
  }
}

int64_t Sealer::sequence() const {
  absl::MutexLock l(&mu_);
  return sequence_;
}

absl::Status Sealer::SealNow() {
  absl::MutexLock l(&mu_);
  bool moved = false;
  for (const std::string& topic : options_.topics) CRM_RETURN_IF_ERROR(CatchUp(topic, &moved));
  return moved ? Write() : absl::OkStatus();
}

absl::Status Sealer::CatchUp(const std::string& topic, bool* moved, SealCheck* check) {
  absl::StatusOr<std::vector<int64_t>> ends = log_->EndOffsets(topic);
  if (absl::IsNotFound(ends.status())) return absl::OkStatus();
  CRM_RETURN_IF_ERROR(ends.status());
  std::vector<Position> from;
  std::map<int32_t, int64_t> remaining;  // partition -> end
  for (int32_t p = 0; p < static_cast<int32_t>(ends->size()); ++p) {
    const int64_t next = heads_[{topic, p}].next;
    if (next < (*ends)[p]) {
      from.push_back({p, next});
      remaining[p] = (*ends)[p];
    }
  }
  if (from.empty()) return absl::OkStatus();
  CRM_ASSIGN_OR_RETURN(std::unique_ptr<Subscription> sub, log_->Subscribe(topic, from));
  // A deadline on silence: a long catch-up (the first seal of a large log) takes its time.
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!remaining.empty()) {
    CRM_ASSIGN_OR_RETURN(std::vector<Record> recs, sub->Poll(4096, absl::Milliseconds(200)));
    if (recs.empty() && absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("reading ", topic, " to seal it: the log delivered nothing"));
    }
    if (!recs.empty()) deadline = absl::Now() + absl::Seconds(30);
    for (const Record& r : recs) {
      if (check != nullptr) check->Add(r);
      Head& h = heads_[{topic, r.partition}];
      h.hash = ChainRecord(h.hash, r.offset, r.key, r.value);
      h.next = r.offset + 1;
      *moved = true;
    }
    for (auto it = remaining.begin(); it != remaining.end();) {
      it = sub->Position(it->first) >= it->second ? remaining.erase(it) : std::next(it);
    }
  }
  return absl::OkStatus();
}

absl::Status Sealer::Write() {
  v1::Seal seal;
  seal.set_sequence(sequence_ + 1);
  *seal.mutable_sealed_at() = ToProto(absl::Now());
  if (!previous_.empty()) seal.set_previous(Sha256({previous_}));
  seal.set_key_id(key_.key_id());
  for (const auto& [where, h] : heads_) {
    if (h.next == 0) continue;
    v1::PartitionSeal* p = seal.add_partitions();
    p->set_topic(where.first);
    p->set_partition(where.second);
    p->set_next_offset(h.next);
    p->set_chain_hash(h.hash);
  }
  v1::SignedSeal ss;
  ss.set_seal(seal.SerializeAsString());
  CRM_ASSIGN_OR_RETURN(*ss.mutable_signature(), key_.Sign(ss.seal()));
  std::string bytes = ss.SerializeAsString();
  CRM_RETURN_IF_ERROR(ReplaceFile(options_.dir, kLatest, bytes));
  sequence_ = seal.sequence();
  previous_ = bytes;
  if (publisher_ != nullptr) {
    // The folder's copy counts; a publication that fails or takes too long is an error of
    // this seal, and the next one is published all the same.
    auto done = std::make_shared<absl::Notification>();
    auto result = std::make_shared<absl::Status>();
    publisher_->Append("seal", {Message{std::move(bytes), {}}}, [done, result](absl::StatusOr<Appended> r) {
      *result = r.status();
      done->Notify();
    });
    if (!done->WaitForNotificationWithTimeout(absl::Seconds(10))) {
      return absl::DeadlineExceededError(absl::StrCat("publishing seal ", sequence_, " on ", kSealTopic, " timed out"));
    }
    if (!result->ok()) {
      return absl::Status(result->code(), absl::StrCat("publishing seal ", sequence_, ": ", result->message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace crm::eventlog
