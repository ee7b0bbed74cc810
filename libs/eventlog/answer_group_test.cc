#include "libs/eventlog/answer_group.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace crm::eventlog {
namespace {

// A part that records when it ends, and may run more "callbacks" (Add) while it ends.
class Recorder final : public AnswerGroup::Part {
 public:
  Recorder(std::vector<std::string>* ended, std::string name) : ended_(ended), name_(std::move(name)) {}
  void Add(std::string item) { items_.push_back(std::move(item)); }
  void End() override {
    std::string all = name_ + ":";
    for (const std::string& i : items_) all += i;
    ended_->push_back(all);
    if (then_) then_();
  }
  std::function<void()> then_;

 private:
  std::vector<std::string>* ended_;
  std::string name_;
  std::vector<std::string> items_;
};

TEST(AnswerGroupTest, EachOwnerGetsOnePartThatEndsWithTheGroupInOrder) {
  EXPECT_EQ(AnswerGroup::Current(), nullptr) << "no group outside";
  std::vector<std::string> ended;
  int first = 0, second = 0;
  {
    AnswerGroup group;
    EXPECT_EQ(AnswerGroup::Current(), &group);
    auto part = [&](const void* owner, const char* name) -> Recorder& {
      return group.PartOf<Recorder>(owner, [&] { return std::make_unique<Recorder>(&ended, name); });
    };
    part(&first, "first").Add("a");
    part(&second, "second").Add("b");
    part(&first, "first").Add("c");
    EXPECT_TRUE(ended.empty()) << "nothing ends before the group does";
  }
  EXPECT_EQ(ended, (std::vector<std::string>{"first:ac", "second:b"}));
  EXPECT_EQ(AnswerGroup::Current(), nullptr);
}

// A part's end may run a callback that adds to the group again: that work gets a part of its
// own, which ends too.
TEST(AnswerGroupTest, APartAddedWhileTheGroupEndsEndsToo) {
  std::vector<std::string> ended;
  int owner = 0;
  {
    AnswerGroup group;
    Recorder& r = group.PartOf<Recorder>(&owner, [&] { return std::make_unique<Recorder>(&ended, "one"); });
    r.Add("x");
    r.then_ = [&] {
      AnswerGroup::Current()
          ->PartOf<Recorder>(&owner, [&] { return std::make_unique<Recorder>(&ended, "two"); })
          .Add("y");
    };
  }
  EXPECT_EQ(ended, (std::vector<std::string>{"one:x", "two:y"}));
}

TEST(AnswerGroupDeathTest, GroupsDoNotNest) {
  EXPECT_DEATH(
      {
        AnswerGroup outer;
        AnswerGroup inner;
      },
      "inside another");
}

// The answerer runs groups in the order handed over, each inside one AnswerGroup, and off the
// handing thread; a closing writer takes its callbacks out of groups not yet taken; the
// destructor runs what is left.
TEST(AnswererTest, RunsGroupsInOrderOffTheWritersThreadAndGivesBackWhatWaits) {
  absl::Mutex mu;
  std::vector<std::string> ran;
  std::vector<size_t> group_sizes;
  absl::Notification release;
  int writer_a = 0, writer_b = 0;
  auto record = [&](std::string name, bool hold = false) -> AppendCallback {
    return [&, name, hold](absl::StatusOr<Appended> r) {
      EXPECT_NE(AnswerGroup::Current(), nullptr) << "inside the group";
      if (hold) release.WaitForNotificationWithTimeout(absl::Seconds(30));
      absl::MutexLock l(&mu);
      ran.push_back(name + (r.ok() ? "" : "!"));
    };
  };
  auto answered = [&](const std::vector<Answer>& g) {
    absl::MutexLock l(&mu);
    size_t n = 0;
    for (const Answer& a : g) n += a.done ? 1 : 0;
    group_sizes.push_back(n);
  };
  std::vector<AppendCallback> taken;
  {
    Answerer answerer("test-answer", answered);
    std::vector<Answer> first;
    first.push_back({record("held", /*hold=*/true), Appended{}, &writer_a});
    answerer.Hand(std::move(first));
    std::vector<Answer> second;
    second.push_back({record("a1"), Appended{}, &writer_a});
    second.push_back({record("b1"), absl::UnavailableError("refused"), &writer_b});
    second.push_back({record("a2"), Appended{}, &writer_a});
    answerer.WaitTaken();  // the first group was taken; it is held in its callback
    answerer.Hand(std::move(second));
    taken = answerer.TakeWaiting(&writer_b);
    EXPECT_EQ(taken.size(), 1u);
    release.Notify();
    answerer.WaitIdle();
    absl::MutexLock l(&mu);
    EXPECT_EQ(ran, (std::vector<std::string>{"held", "a1", "a2"}));
    EXPECT_EQ(group_sizes, (std::vector<size_t>{1, 2}));
    std::vector<Answer> third;
    third.push_back({record("a3"), Appended{}, &writer_a});
    answerer.Hand(std::move(third));
  }
  EXPECT_EQ(ran.back(), "a3") << "the destructor ran what was handed over";
}

}  // namespace
}  // namespace crm::eventlog
