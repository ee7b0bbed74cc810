#ifndef CRM_LIBS_EVENTLOG_ANSWER_GROUP_H_
#define CRM_LIBS_EVENTLOG_ANSWER_GROUP_H_

#include <memory>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"

namespace crm::eventlog {

// The appends a log made durable together (one group commit) are answered together: the log
// runs their callbacks one after another inside one AnswerGroup on the answering thread.
// A callback may leave part of its work to the group's end, so that work common to the
// group is done once: a projection commits the rows of all its appends in the group in one
// batch and then answers them (projection::AggregateWriter; docs/architecture.md §3).
//
// Outside a group (Current() is null: a log that answers one append at a time, a test
// calling a callback itself) a callback does its work at once; so does one a log runs inside
// a call its owner made (a refusal inside Append, an answer at a writer's close deadline) on
// a thread that is inside a group: that group ends after the call returned, later than the
// owner may wait. Not thread-safe: a group lives on one thread.
class AnswerGroup {
 public:
  // What one owner (a projection writer, say) leaves to the group's end.
  class Part {
   public:
    virtual ~Part() = default;
    // Runs once, when the group ends, on the answering thread.
    virtual void End() = 0;
  };

  // Opens a group on this thread; Current() returns it until the destructor. Groups do not
  // nest: opening one while another is open on the thread is a programming error (checked).
  AnswerGroup();
  // Ends every part, in the order they were added, then closes the group. A part added while
  // the parts end (by a callback an ending part ran) ends too.
  ~AnswerGroup();
  AnswerGroup(const AnswerGroup&) = delete;
  AnswerGroup& operator=(const AnswerGroup&) = delete;

  // The group open on this thread, or null.
  static AnswerGroup* Current();

  // The part `owner` added to this group, created with `make()` the first time. The group
  // owns it until it ended.
  template <typename P>
  P& PartOf(const void* owner, absl::FunctionRef<std::unique_ptr<P>()> make) {
    for (auto& [o, part] : parts_) {
      if (o == owner && !part.second) return static_cast<P&>(*part.first);
    }
    parts_.emplace_back(owner, std::make_pair(std::unique_ptr<Part>(make()), false));
    return static_cast<P&>(*parts_.back().second.first);
  }

 private:
  // Owner, its part and whether the part has ended already (a later call of the same owner,
  // from a callback an ending part ran, gets a new part).
  std::vector<std::pair<const void*, std::pair<std::unique_ptr<Part>, bool>>> parts_;
};

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_ANSWER_GROUP_H_
