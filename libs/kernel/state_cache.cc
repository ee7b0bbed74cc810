#include "libs/kernel/state_cache.h"

#include <utility>

namespace crm::kernel {

StateCache::StateCache(projection::ProjectionDb* db, size_t capacity) : db_(db), capacity_(capacity) {
  db_->AddCommitObserver(this);
}

StateCache::~StateCache() { db_->RemoveCommitObserver(this); }

std::shared_ptr<const google::protobuf::Message> StateCache::Find(const std::string& key) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.state == nullptr) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.state;
}

void StateCache::Expect(const std::string& key) {
  absl::MutexLock l(&mu_);
  Entry& e = entries_[key];
  DropStateLocked(e);
  e.expected = true;
  e.commits = 0;
}

void StateCache::Fill(const std::string& key, std::shared_ptr<const google::protobuf::Message> state) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || !it->second.expected) return;
  Entry& e = it->second;
  if (state == nullptr || e.commits != 1 || capacity_ == 0) {
    entries_.erase(it);
    return;
  }
  e.expected = false;
  e.state = std::move(state);
  lru_.push_front(key);
  e.lru = lru_.begin();
  while (lru_.size() > capacity_) {
    auto last = entries_.find(lru_.back());
    lru_.pop_back();
    if (last != entries_.end()) entries_.erase(last);
  }
}

void StateCache::Committed(const projection::Batch& batch) {
  absl::MutexLock l(&mu_);
  if (entries_.empty()) return;
  batch.ForEachKey([this](const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    if (e.expected) {
      ++e.commits;
    } else {
      DropStateLocked(e);
      entries_.erase(it);
    }
  });
}

void StateCache::DropStateLocked(Entry& e) {
  if (e.state == nullptr) return;
  lru_.erase(e.lru);
  e.state = nullptr;
}

size_t StateCache::size() const {
  absl::MutexLock l(&mu_);
  return lru_.size();
}

}  // namespace crm::kernel
