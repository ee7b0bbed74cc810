#ifndef CRM_LIBS_KERNEL_STATE_CACHE_H_
#define CRM_LIBS_KERNEL_STATE_CACHE_H_

// The write kernel's cache of hot aggregates (docs/architecture.md §3): the state a command
// just committed, kept so that the next command on the same aggregate reads no row.
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message.h"
#include "libs/projection/projection_db.h"

namespace crm::kernel {

// State rows by key, as the projections last committed them, at most `capacity` of them
// (least recently used go first). A state enters only through Expect() before the append of
// the command that folded it and Fill() after its commit, and only when exactly that one commit
// wrote its row in between; every commit of a row (the projections', a catch-up's, another
// topic's follower's) drops what the cache holds of it. So a hit is the row as committed, or
// there is no hit. Thread-safe; observes `db` from construction to destruction (`db` must
// outlive the cache).
class StateCache : public projection::ProjectionDb::CommitObserver {
 public:
  StateCache(projection::ProjectionDb* db, size_t capacity);
  ~StateCache() override;
  StateCache(const StateCache&) = delete;
  StateCache& operator=(const StateCache&) = delete;

  // The state of row `key`; null when it is not cached.
  std::shared_ptr<const google::protobuf::Message> Find(const std::string& key);
  // Before the append that will commit row `key`: drops its state and counts the commits of
  // the row from here on. One expectation per key at a time (the caller holds its lease).
  void Expect(const std::string& key);
  // After that append: caches `state` as the row when exactly one commit wrote it since
  // Expect(); ends the expectation either way. Null `state` (the append failed) only ends it.
  void Fill(const std::string& key, std::shared_ptr<const google::protobuf::Message> state);

  void Committed(const projection::Batch& batch) override;

  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const google::protobuf::Message> state;  // null while expected
    bool expected = false;
    int64_t commits = 0;                    // commits of the row since Expect()
    std::list<std::string>::iterator lru;   // valid when state is set
  };
  // Drops the state of `e` (the entry stays when expected).
  void DropStateLocked(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  projection::ProjectionDb* const db_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // cached keys, most recently used first
};

}  // namespace crm::kernel

#endif  // CRM_LIBS_KERNEL_STATE_CACHE_H_
