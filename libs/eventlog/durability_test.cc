// The embedded log's refusal of a damaged write-ahead log, and seals.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/eventlog/embedded_log.h"
#include "libs/eventlog/seal.h"
#include "libs/eventlog/wal_check.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::eventlog {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class DurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTestDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `n` acknowledged appends of one record each to a log at dir_/log, closed without a flush
  // (as a crash leaves it): the WAL holds them.
  void WriteAndCrash(int n) {
    auto log = OpenEmbeddedLog({.path = dir_ + "/log"});
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE((*log)->CreateTopic("t", 1).ok());
    auto w = (*log)->OpenWriter("t");
    ASSERT_TRUE(w.ok());
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE((*w)->AppendSync(absl::StrCat("k", i), {{std::string(300, 'a' + i % 26), {}}}).ok());
    }
    w->reset();
    // What a kill -9 leaves: the WAL, no flush. The log's own close flushes, so copy the
    // folder while it is open.
    fs::copy(dir_ + "/log", dir_ + "/crashed", fs::copy_options::recursive);
    log->reset();
    fs::remove_all(dir_ + "/log");
    fs::rename(dir_ + "/crashed", dir_ + "/log");
    fs::remove(dir_ + "/log/LOCK");
  }

  std::string Wal() {
    for (const auto& e : fs::directory_iterator(dir_ + "/log")) {
      if (e.path().extension() == ".log" && fs::file_size(e.path()) > 0) return e.path().string();
    }
    return "";
  }

  static void FlipByte(const std::string& file, int64_t offset) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(offset);
    char c;
    f.read(&c, 1);
    c ^= 0x5a;
    f.seekp(offset);
    f.write(&c, 1);
  }

  int64_t Records() {
    auto log = OpenEmbeddedLog({.path = dir_ + "/log"});
    if (!log.ok()) return -1;
    return (*(*log)->EndOffsets("t"))[0];
  }

  std::string dir_;
};

TEST_F(DurabilityTest, ADamagedRecordInTheWalIsRefusedNamingTheFileAndOffset) {
  WriteAndCrash(30);
  const std::string wal = Wal();
  ASSERT_FALSE(wal.empty());
  const int64_t size = static_cast<int64_t>(fs::file_size(wal));
  // Record 10 of 30: each append is one WAL record of the same size, after the topic's.
  const int64_t record = size / 30;
  const int64_t first = size - 30 * record;
  FlipByte(wal, first + 10 * record + 100);
  auto damage = CheckWalFile(wal);
  ASSERT_TRUE(damage.ok());
  EXPECT_EQ(damage->offset, first + 10 * record);
  EXPECT_EQ(damage->reason, "checksum mismatch");
  auto refused = OpenEmbeddedLog({.path = dir_ + "/log"});
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat(wal, " is damaged at byte ", first + 10 * record, " of ", size)));
  // A read-only follower (crmctl verify) refuses it too.
  auto follower = OpenEmbeddedLog({.path = dir_ + "/log", .follower_dir = dir_ + "/follower"});
  EXPECT_EQ(follower.status().code(), absl::StatusCode::kDataLoss) << follower.status();
}

// RocksDB's tolerant mode takes a damaged length field in the WAL's last 32 KiB block for a
// torn last write and opens without every record after it (measured: 10 of 30 kept).
TEST_F(DurabilityTest, ADamagedLengthFieldHidingIntactRecordsIsRefused) {
  WriteAndCrash(30);
  const std::string wal = Wal();
  const int64_t size = static_cast<int64_t>(fs::file_size(wal));
  ASSERT_LT(size, 32768) << "one block";
  const int64_t record = size / 30;
  const int64_t first = size - 30 * record;
  FlipByte(wal, first + 10 * record + 5);  // the high byte of record 10's length
  auto refused = OpenEmbeddedLog({.path = dir_ + "/log"});
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("damaged at byte ", first + 10 * record, " of ", size,
                                     " (record length past the end of the file, with intact records after it)")));
}

TEST_F(DurabilityTest, ADamagedLastRecordIsRefusedToo) {
  WriteAndCrash(30);
  const std::string wal = Wal();
  FlipByte(wal, static_cast<int64_t>(fs::file_size(wal)) - 50);
  EXPECT_EQ(OpenEmbeddedLog({.path = dir_ + "/log"}).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(DurabilityTest, ATornLastRecordIsNotDamage) {
  WriteAndCrash(30);
  const std::string wal = Wal();
  // A crash in the middle of writing the last record, before it was synced and acknowledged.
  fs::resize_file(wal, fs::file_size(wal) - 100);
  auto damage = CheckWalFile(wal);
  ASSERT_TRUE(damage.ok());
  EXPECT_TRUE(damage->file.empty()) << DescribeWalDamage(*damage);
  EXPECT_EQ(Records(), 29);
}

TEST_F(DurabilityTest, AnOperatorMayAcceptTheTruncationAndItIsReported) {
  WriteAndCrash(30);
  const std::string wal = Wal();
  FlipByte(wal, 10 * static_cast<int64_t>(fs::file_size(wal)) / 30 + 100);
  std::vector<std::string> audit;
  {
    auto log = OpenEmbeddedLog({.path = dir_ + "/log",
                                .accept_truncation = true,
                                .on_truncation = [&](const std::string& line) { audit.push_back(line); }});
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*(*log)->EndOffsets("t"))[0], 10);
  }
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_THAT(audit[0], HasSubstr("accepted a truncation"));
  EXPECT_THAT(audit[0], HasSubstr(wal));
  // Accepted once: the damaged file is gone, the next open is an ordinary one.
  EXPECT_EQ(Records(), 10);
}

TEST_F(DurabilityTest, ADamagedTableFileIsRefusedNotTakenForAnEmptyPartition) {
  {
    auto log = OpenEmbeddedLog({.path = dir_ + "/log"});
    ASSERT_TRUE((*log)->CreateTopic("t", 1).ok());
    auto w = (*log)->OpenWriter("t");
    for (int i = 0; i < 30; ++i) ASSERT_TRUE((*w)->AppendSync("k", {{std::string(300, 'a' + i % 26), {}}}).ok());
  }  // a clean close flushes the records into a table file
  std::string sst;
  for (const auto& e : fs::directory_iterator(dir_ + "/log")) {
    if (e.path().extension() == ".sst") sst = e.path().string();
  }
  ASSERT_FALSE(sst.empty());
  FlipByte(sst, static_cast<int64_t>(fs::file_size(sst)) / 3);  // a data block
  auto refused = OpenEmbeddedLog({.path = dir_ + "/log"});
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(fs::path(sst).filename().string()));
}

// Seals: a key, a log of two partitions, a folder.
class SealTest : public DurabilityTest {
 protected:
  void SetUp() override {
    DurabilityTest::SetUp();
    key_ = *SealKey::LoadPrivate(dir_ + "/seal.key", /*create=*/true);
    log_ = *OpenEmbeddedLog({.path = dir_ + "/log"});
    ASSERT_TRUE(log_->CreateTopic("t", 2).ok());
    writer_ = *log_->OpenWriter("t");
  }
  void TearDown() override {
    writer_.reset();
    log_.reset();
    DurabilityTest::TearDown();
  }
  void Append(int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(writer_->AppendSync(absl::StrCat("k", next_++), {{"v", {}}}).ok());
  }
  Sealer::Options Options() { return {.topics = {"t"}, .dir = dir_ + "/seals", .interval = absl::Hours(1)}; }
  std::vector<Record> All() { return *ReadToEnd(*log_, "t", {{0, 0}, {1, 0}}); }

  SealKey key_;
  std::unique_ptr<Log> log_;
  std::unique_ptr<Writer> writer_;
  int next_ = 0;
};

TEST_F(SealTest, ASealCoversEveryRecordAndTamperingIsSeen) {
  Append(10);
  auto sealer = Sealer::Start(log_.get(), key_, Options());  // seals the log as it finds it
  ASSERT_TRUE(sealer.ok()) << sealer.status();
  ASSERT_TRUE((*sealer)->SealNow().ok());
  EXPECT_EQ((*sealer)->sequence(), 1) << "nothing appended since: no new seal";
  Append(2);  // after the seal: not covered
  auto pub = SealKey::LoadPublic(dir_ + "/seal.key");
  ASSERT_TRUE(pub.ok());
  EXPECT_FALSE(pub->can_sign());
  auto seal = ReadLatestSeal(dir_ + "/seals", *pub);
  ASSERT_TRUE(seal.ok()) << seal.status();
  EXPECT_EQ(seal->seal.sequence(), 1);
  // The log as it is passes.
  {
    SealCheck check(seal->seal);
    for (const Record& r : All()) check.Add(r);
    EXPECT_THAT(check.Finish(), ::testing::IsEmpty());
    EXPECT_EQ(check.unsealed(), 2);
  }
  // A rewritten sealed record (whatever its hash chain says) fails.
  {
    SealCheck check(seal->seal);
    std::vector<Record> all = All();
    all[3].value = "rewritten";
    for (const Record& r : all) check.Add(r);
    EXPECT_THAT(check.Finish(), ::testing::ElementsAre(HasSubstr("are not those sealed")));
  }
  // A removed sealed record: the last of a partition, or one in the middle.
  for (bool last : {true, false}) {
    SealCheck check(seal->seal);
    const int64_t sealed_end = seal->seal.partitions(0).next_offset();
    for (const Record& r : All()) {
      const bool drop = r.partition == seal->seal.partitions(0).partition() &&
                        r.offset == (last ? sealed_end - 1 : 0);
      if (!drop) check.Add(r);
    }
    EXPECT_THAT(check.Finish(), ::testing::Not(::testing::IsEmpty())) << (last ? "last" : "first");
  }
  // The seal itself, altered: its signature fails.
  {
    std::string bytes = seal->signed_bytes;
    bytes[bytes.size() / 2] ^= 1;
    std::ofstream(dir_ + "/seals/latest.seal", std::ios::binary | std::ios::trunc) << bytes;
    EXPECT_EQ(ReadLatestSeal(dir_ + "/seals", *pub).status().code(), absl::StatusCode::kDataLoss);
    std::ofstream(dir_ + "/seals/latest.seal", std::ios::binary | std::ios::trunc) << seal->signed_bytes;
  }
  // Another key's seals are refused.
  auto other = SealKey::LoadPrivate(dir_ + "/other.key", true);
  ASSERT_TRUE(other.ok());
  EXPECT_THAT(std::string(ReadLatestSeal(dir_ + "/seals", *other).status().message()), HasSubstr("another key"));
}

TEST_F(SealTest, StartRefusesALogThatLostSealedRecordsUnlessAccepted) {
  Append(6);
  ASSERT_TRUE(Sealer::Start(log_.get(), key_, Options()).ok());  // seals at its end
  // The same seals beside a log that has fewer records.
  writer_.reset();
  log_.reset();
  fs::rename(dir_ + "/log", dir_ + "/log.sealed");
  log_ = *OpenEmbeddedLog({.path = dir_ + "/log"});
  ASSERT_TRUE(log_->CreateTopic("t", 2).ok());
  writer_ = *log_->OpenWriter("t");
  next_ = 0;
  Append(3);
  writer_.reset();
  auto refused = Sealer::Start(log_.get(), key_, Options());
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("sealed records were removed"));
  std::vector<std::string> audit;
  Sealer::Options accept = Options();
  accept.accept_truncation = true;
  accept.on_audit = [&](const std::string& line) { audit.push_back(line); };
  auto accepted = Sealer::Start(log_.get(), key_, accept);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  accepted->reset();  // seals the log as it is now
  EXPECT_THAT(audit, ::testing::Contains(HasSubstr("accepted: the log is not as sealed")));
  auto seal = ReadLatestSeal(dir_ + "/seals", key_);
  ASSERT_TRUE(seal.ok());
  SealCheck check(seal->seal);
  for (const Record& r : All()) check.Add(r);
  EXPECT_THAT(check.Finish(), ::testing::IsEmpty());
}

TEST_F(SealTest, AnEmptiedSealFolderBesidePublishedSealsIsRefused) {
  Append(2);
  ASSERT_TRUE(Sealer::Start(log_.get(), key_, Options()).ok());
  fs::remove_all(dir_ + "/seals");
  auto refused = Sealer::Start(log_.get(), key_, Options());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
}

TEST_F(SealTest, TheChainHashCoversOffsetKeyAndValue) {
  const std::string h = ChainRecord("", 0, "k", "v");
  EXPECT_EQ(h.size(), 32u);
  EXPECT_NE(h, ChainRecord("", 1, "k", "v"));
  EXPECT_NE(h, ChainRecord("", 0, "kv", ""));
  EXPECT_NE(h, ChainRecord(h, 0, "k", "v"));
}

}  // namespace
}  // namespace crm::eventlog
