#include "libs/eventlog/answer_group.h"

#include <cstdio>
#include <cstdlib>

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

}  // namespace crm::eventlog
