#ifndef CRM_LIBS_EVENTLOG_ANSWER_GROUP_H_
#define CRM_LIBS_EVENTLOG_ANSWER_GROUP_H_

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/eventlog/log.h"

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

// One append's answer, as a log hands it to its Answerer.
struct Answer {
  AppendCallback done;  // null once a closing writer took it (Answerer::TakeWaiting)
  absl::StatusOr<Appended> result;
  const void* owner = nullptr;  // the writer the append came from
};

// Runs the answers of a log's written groups on a thread of its own, each group's callbacks in
// the order handed over and inside one AnswerGroup, so that the thread that writes (the
// embedded log's committer, a Kafka writer) writes the next group meanwhile and never runs a
// callback (docs/architecture.md §2). The writer runs at most one group ahead: it hands a group
// over, and forms its next one once that one was taken (WaitTaken), so a group gathers the
// appends the answers before it brought. The waits below wait for callbacks, which must not
// block (Writer::Append). Thread-safe.
class Answerer {
 public:
  // `answered(group)` runs on the answering thread after each group's callbacks ran, with the
  // group (callbacks a closing writer took are null), e.g. to count them done. It must not
  // call into this Answerer. Default: none.
  explicit Answerer(std::string thread_name,
                    absl::AnyInvocable<void(const std::vector<Answer>&)> answered = nullptr);
  // Runs every group handed over, then stops the thread.
  ~Answerer();
  Answerer(const Answerer&) = delete;
  Answerer& operator=(const Answerer&) = delete;

  // Hands over one group's answers, in log order. Does not wait.
  void Hand(std::vector<Answer> group);
  // Waits until every group handed over was taken (the last may still run).
  void WaitTaken();
  // Waits until every group handed over has run.
  void WaitIdle();
  // The callbacks of `owner` in groups not yet taken, for a closing writer to answer itself;
  // their places in the groups run nothing.
  std::vector<AppendCallback> TakeWaiting(const void* owner);

 private:
  void Loop(const std::string& thread_name);

  absl::AnyInvocable<void(const std::vector<Answer>&)> answered_;
  absl::Mutex mu_;
  std::deque<std::vector<Answer>> handed_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_ANSWER_GROUP_H_
