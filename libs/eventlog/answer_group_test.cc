#include "libs/eventlog/answer_group.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace crm::eventlog
