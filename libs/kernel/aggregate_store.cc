#include "libs/kernel/aggregate_store.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"
#include "libs/common/status_macros.h"

namespace crm::kernel {

struct Lease::Held {
  projection::AggregateWriter* const writer;
  const std::vector<std::string> ids;  // sorted, distinct

  Held(projection::AggregateWriter* w, std::vector<std::string> i) : writer(w), ids(std::move(i)) {}
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  ~Held() {
    for (auto it = ids.rbegin(); it != ids.rend(); ++it) writer->Release(*it);
  }
};

bool StoreOptions::CheckCachedStatesByDefault() {
  const char* v = std::getenv("CRM_CHECK_STATE_CACHE");
  return v != nullptr && std::string_view(v) == "1";
}

AggregateStore::AggregateStore(projection::AggregateWriter* writer, Options options)
    : writer_(writer), options_(options) {
  if (options_.cached_states > 0) cache_ = std::make_unique<StateCache>(writer_->db(), options_.cached_states);
}

bool Lease::Holds(const std::string& id) const {
  return held_ != nullptr && std::binary_search(held_->ids.begin(), held_->ids.end(), id);
}

const std::vector<std::string>& Lease::ids() const {
  static const std::vector<std::string> kNone;
  return held_ != nullptr ? held_->ids : kNone;
}

// A lease being acquired: the ids still to take and who gets the lease.
struct AggregateStore::Acquisition {
  std::vector<std::string> ids;
  absl::AnyInvocable<void(absl::StatusOr<Lease>)> fn;
  absl::Time deadline;
};

void AggregateStore::Acquire(std::vector<std::string> ids, absl::AnyInvocable<void(absl::StatusOr<Lease>)> fn,
                             absl::Time deadline) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.empty() || ids.front().empty()) {
    return fn(absl::InvalidArgumentError("a lease needs the ids of its aggregates"));
  }
  if (ids.size() > kMaxLeaseIds) {
    return fn(absl::InvalidArgumentError(
        absl::StrCat("a lease holds at most ", kMaxLeaseIds, " aggregates, not ", ids.size())));
  }
  auto a = std::make_shared<Acquisition>();
  a->ids = std::move(ids);
  a->fn = std::move(fn);
  a->deadline = deadline;
  AcquireFrom(std::move(a), 0);
}

void AggregateStore::AcquireFrom(std::shared_ptr<Acquisition> a, size_t next) {
  if (next == a->ids.size()) {
    // Every id is held from here on: only the Held's destructor gives them back.
    auto held = std::make_shared<const Lease::Held>(writer_, std::move(a->ids));
    // Checked once granted, not by a timer: a waiter costs no thread, and one whose call is
    // over must not write what its client was told failed.
    if (a->deadline != absl::InfiniteFuture() && absl::Now() > a->deadline) {
      held.reset();  // gives the ids back before the refusal runs
      return a->fn(absl::DeadlineExceededError(
          "the call's deadline passed while it waited for the resource; nothing was written"));
    }
    return a->fn(Lease(std::move(held)));
  }
  const std::string& id = a->ids[next];
  // `a` is copied into the waiter, not moved: a refused waiter is dropped with its copy.
  if (!writer_->Serialize(id, [this, a, next]() mutable { AcquireFrom(std::move(a), next + 1); },
                          options_.max_waiting_per_aggregate)) {
    // Give back the ids this acquisition holds already, in reverse, then refuse.
    for (size_t i = next; i-- > 0;) writer_->Release(a->ids[i]);
    a->fn(ClientSafe(absl::ResourceExhaustedError(
        "too many commands wait for this resource; retry with the same request_id later")));
  }
}

absl::StatusOr<std::string> AggregateStore::RepeatOf(const Lease& lease, const std::string& request_id,
                                                     const std::string& id, bool spans_aggregates, bool fresh_id) {
  request_lookups_.fetch_add(1, std::memory_order_relaxed);
  rocksdb::DB* db = writer_->db()->db();
  if (spans_aggregates) {
    // Only this aggregate's own row counts, however many aggregates the request changed (a
    // migration of thousands): one point read, not a seek that could stop before it.
    CRM_ASSIGN_OR_RETURN(bool mine, projection::HasRequestRow(db, request_id, id));
    return mine ? id : std::string();
  }
  CRM_ASSIGN_OR_RETURN(std::vector<std::string> holders,
                       projection::RequestHolders(db, request_id, kMaxRequestHolders));
  std::string elsewhere;
  for (const std::string& h : holders) {
    if (h == id) return id;
    // An entry with a '/' may be the row of a longer request id sharing this prefix: not
    // evidence of reuse.
    if (elsewhere.empty() && h.find('/') == std::string::npos && !lease.Holds(h)) elsewhere = h;
  }
  if (holders.size() == kMaxRequestHolders) {
    // The seek stopped at its bound (rows of longer request ids sharing the prefix): this
    // aggregate's own row may sort after them.
    CRM_ASSIGN_OR_RETURN(bool mine, projection::HasRequestRow(db, request_id, id));
    if (mine) return id;
  }
  if (elsewhere.empty()) return std::string();
  if (fresh_id) return elsewhere;
  return InvalidFieldError("request_id", "was already used for another resource");
}

namespace {

absl::Status KeysExhausted() {
  return ClientSafe(absl::ResourceExhaustedError("too many writes with unique keys in flight; retry"));
}

absl::Status Taken(const UniqueKey& k, absl::string_view holder) {
  return WithErrorInfo(absl::AlreadyExistsError(absl::StrCat(k.collection, "/", holder, " already has this ", k.what)),
                       k.reason, {{"existing", absl::StrCat(k.collection, "/", holder)}, {"field", k.field}});
}

}  // namespace

absl::Status AggregateStore::HoldRequest(const std::string& id, const std::string& request_id,
                                         std::vector<std::string>* held) {
  std::string key = projection::RequestPrefix(request_id);
  absl::MutexLock l(&keys_mu_);
  auto it = keys_in_flight_.find(key);
  if (it != keys_in_flight_.end()) {
    // The same aggregate cannot hold it: its lease keeps a second command on it waiting.
    return absl::AbortedError("a request with this request_id is in progress; retry");
  }
  if (keys_in_flight_.size() >= options_.max_keys_in_flight) return KeysExhausted();
  keys_in_flight_.emplace(key, id);
  held->push_back(std::move(key));
  return absl::OkStatus();
}

absl::Status AggregateStore::HoldKeys(const std::string& id, const std::vector<UniqueKey>& keys,
                                      const std::string& shares_with, std::vector<std::string>* held) {
  // The index is read under the lock too: a key taken in the table before its index check
  // could be named to another command as the holder by an aggregate that then never holds it.
  absl::MutexLock l(&keys_mu_);
  std::vector<std::string> wanted;
  for (const UniqueKey& k : keys) {
    auto it = keys_in_flight_.find(k.prefix);
    if (it != keys_in_flight_.end()) {
      if (it->second != id) return Taken(k, it->second);
      continue;
    }
    absl::StatusOr<std::string> holder =
        OtherHolder(k.prefix, [&](absl::string_view h) { return h == id || h == shares_with; });
    if (!holder.ok()) return holder.status();
    if (!holder->empty()) return Taken(k, *holder);
    if (std::find(wanted.begin(), wanted.end(), k.prefix) == wanted.end()) wanted.push_back(k.prefix);
  }
  if (keys_in_flight_.size() + wanted.size() > options_.max_keys_in_flight) return KeysExhausted();
  for (std::string& k : wanted) {
    keys_in_flight_.emplace(k, id);
    held->push_back(std::move(k));
  }
  return absl::OkStatus();
}

void AggregateStore::Unhold(const std::vector<std::string>& held) {
  if (held.empty()) return;
  absl::MutexLock l(&keys_mu_);
  for (const std::string& k : held) keys_in_flight_.erase(k);
}

absl::StatusOr<std::string> AggregateStore::OtherHolder(const std::string& prefix,
                                                        absl::FunctionRef<bool(absl::string_view)> mine) {
  std::unique_ptr<rocksdb::Iterator> it(writer_->db()->db()->NewIterator(rocksdb::ReadOptions()));
  size_t read = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && read < kMaxKeyHolders; it->Next(), ++read) {
    const absl::string_view holder(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    // A '/' after the prefix belongs to a longer key sharing it, not to a holder of this one.
    if (holder.empty() || holder.find('/') != absl::string_view::npos) continue;
    if (!mine(holder)) return std::string(holder);
  }
  if (!it->status().ok()) return projection::FromRocks(it->status(), "read a unique key's holders");
  return std::string();
}

eventlog::ExpectedVersion ExpectedFromEtag(int64_t etag) {
  if (etag == 0) return eventlog::ExpectedVersion::Any();
  if (etag == kEtagNothingWritten) return eventlog::ExpectedVersion::NoStream();
  return eventlog::ExpectedVersion::Exact(etag);
}

absl::Status CheckExpected(const eventlog::ExpectedVersion& expected, int64_t version, absl::string_view what,
                           absl::string_view field) {
  switch (expected.kind()) {
    case eventlog::ExpectedVersion::Kind::kAny:
      return absl::OkStatus();
    case eventlog::ExpectedVersion::Kind::kNoStream:
      return CheckEtag(version, kEtagNothingWritten, what, field);
    case eventlog::ExpectedVersion::Kind::kExact:
      // Exact(0) or below would read as CheckEtag's "any": refuse it instead of ignoring it.
      if (expected.version() < 1) return InvalidFieldError(field.empty() ? "etag" : field, "must be a version");
      return CheckEtag(version, expected.version(), what, field);
  }
  return absl::InternalError("unknown expected version kind");
}

StoreCounters AggregateStore::counters() const {
  StoreCounters c;
  c.state_reads = state_reads_.load(std::memory_order_relaxed);
  c.cache_hits = cache_hits_.load(std::memory_order_relaxed);
  c.request_lookups = request_lookups_.load(std::memory_order_relaxed);
  c.folds = folds_.load(std::memory_order_relaxed);
  c.seals = seals_.load(std::memory_order_relaxed);
  c.appends = appends_.load(std::memory_order_relaxed);
  const projection::ProjectionDb::FoldCounters p = writer_->db()->fold_counters();
  c.folds_taken = p.taken;
  c.projection_reads = p.rows_read;
  c.projection_folds = p.folds;
  absl::MutexLock l(&keys_mu_);
  c.keys_in_flight = static_cast<int64_t>(keys_in_flight_.size());
  return c;
}

}  // namespace crm::kernel
