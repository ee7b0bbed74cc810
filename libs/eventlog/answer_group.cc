#include "libs/eventlog/answer_group.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "libs/common/thread_name.h"

namespace crm::eventlog {
namespace {
thread_local AnswerGroup* current = nullptr;
}  // namespace

AnswerGroup::AnswerGroup() {
  if (current != nullptr) {
    std::fputs("crm: an answer group opened inside another on one thread\n", stderr);
    std::abort();
  }
  current = this;
}

AnswerGroup::~AnswerGroup() {
  // By index: an ending part may run a callback that adds a part (parts_ grows meanwhile).
  for (size_t i = 0; i < parts_.size(); ++i) {
    parts_[i].second.second = true;
    std::unique_ptr<Part> part = std::move(parts_[i].second.first);
    part->End();
  }
  current = nullptr;
}

AnswerGroup* AnswerGroup::Current() { return current; }

Answerer::Answerer(std::string thread_name, absl::AnyInvocable<void(const std::vector<Answer>&)> answered)
    : answered_(std::move(answered)) {
  thread_ = std::thread([this, name = std::move(thread_name)] { Loop(name); });
}

Answerer::~Answerer() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void Answerer::Hand(std::vector<Answer> group) {
  absl::MutexLock l(&mu_);
  handed_.push_back(std::move(group));
}

void Answerer::WaitTaken() {
  absl::MutexLock l(&mu_);
  auto taken = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return handed_.empty(); };
  mu_.Await(absl::Condition(&taken));
}

void Answerer::WaitIdle() {
  absl::MutexLock l(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return handed_.empty() && !running_; };
  mu_.Await(absl::Condition(&idle));
}

std::vector<AppendCallback> Answerer::TakeWaiting(const void* owner) {
  std::vector<AppendCallback> out;
  absl::MutexLock l(&mu_);
  for (std::vector<Answer>& group : handed_) {
    for (Answer& a : group) {
      if (a.owner == owner && a.done) out.push_back(std::exchange(a.done, nullptr));
    }
  }
  return out;
}

void Answerer::Loop(const std::string& thread_name) {
  NameThisThread(thread_name);
  for (;;) {
    std::vector<Answer> group;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !handed_.empty() || stopping_; };
      mu_.Await(absl::Condition(&ready));
      if (handed_.empty()) return;
      group = std::move(handed_.front());
      handed_.pop_front();
      running_ = true;
    }
    {
      AnswerGroup answering;
      for (Answer& a : group) {
        if (a.done) a.done(std::move(a.result));
      }
    }
    if (answered_) answered_(group);
    absl::MutexLock l(&mu_);
    running_ = false;
  }
}

}  // namespace crm::eventlog
