#include "libs/server/process.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/common/temp_dir_testing.h"

namespace crm::server {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const fs::path& p) {
  struct stat st;
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

class PrivateFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_umask_ = ::umask(022);  // the usual one, under which the tester saw 0755 and 0644
    root_ = fs::path(NewTestDir("process_test"));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    ::umask(old_umask_);
    fs::remove_all(root_);
  }
  void Write(const fs::path& p, mode_t mode) {
    std::ofstream(p) << "x";
    fs::permissions(p, static_cast<fs::perms>(mode));
  }

  mode_t old_umask_ = 0;
  fs::path root_;
};

TEST_F(PrivateFilesTest, NewFilesAndFoldersArePrivate) {
  RestrictNewFileModes();
  const fs::path dir = root_ / "made";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  const int fd = ::open((dir / "f").c_str(), O_CREAT | O_WRONLY, 0644);  // what RocksDB asks for
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(dir / "f"), 0600u);
}

TEST_F(PrivateFilesTest, CreatesAMissingDataFolderPrivate) {
  const fs::path data = root_ / "a" / "data";
  auto r = PreparePrivateDir(data.string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ModeOf(data), 0700u);
}

// A data folder of an older version: 0755 folders, 0644 files, a key at 0640.
TEST_F(PrivateFilesTest, TightensAnOlderVersionsDataFolder) {
  const fs::path data = root_ / "data";
  fs::create_directories(data / "log" / "archive");
  fs::create_directories(data / "customers");
  fs::permissions(data, static_cast<fs::perms>(0755));
  fs::permissions(data / "log", static_cast<fs::perms>(0775));
  Write(data / "signing.key", 0640);
  Write(data / "log" / "000001.sst", 0644);
  Write(data / "log" / "archive" / "000002.log", 0666);
  Write(data / "customers" / "CURRENT", 0600);  // already private
  // A link out of the folder: neither it nor its target changes.
  Write(root_ / "outside", 0644);
  fs::create_symlink(root_ / "outside", data / "customers" / "link");

  auto r = PreparePrivateDir(data.string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tightened, 7);  // 4 folders, 3 files (CURRENT was private already)
  EXPECT_EQ(r->foreign, 0);
  for (const fs::path& d : {data, data / "log", data / "log" / "archive", data / "customers"}) {
    EXPECT_EQ(ModeOf(d), 0700u) << d;
  }
  EXPECT_EQ(ModeOf(data / "signing.key"), 0600u);
  EXPECT_EQ(ModeOf(data / "log" / "000001.sst"), 0600u);
  EXPECT_EQ(ModeOf(data / "log" / "archive" / "000002.log"), 0600u);
  EXPECT_EQ(ModeOf(data / "customers" / "CURRENT"), 0600u);
  EXPECT_EQ(ModeOf(root_ / "outside"), 0644u);
  // A second start finds nothing to do.
  r = PreparePrivateDir(data.string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tightened, 0);
}

TEST_F(PrivateFilesTest, FailsNamingTheFolderItCannotCreate) {
  Write(root_ / "file", 0644);
  auto r = PreparePrivateDir((root_ / "file" / "data").string());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("file/data"), absl::string_view::npos) << r.status();
}

}  // namespace
}  // namespace crm::server
