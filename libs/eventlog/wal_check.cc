#include "libs/eventlog/wal_check.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "rocksdb/file_checksum.h"

namespace crm::eventlog {
namespace {

// RocksDB's log format (db/log_format.h in its sources, documented in its wiki as "Write
// Ahead Log File Format"): the file is a sequence of 32 KiB blocks; a record never straddles
// a block but is cut into FIRST / MIDDLE / LAST fragments; a block's tail shorter than a
// header is zero padding. Header: masked CRC32C (4 bytes, little endian), payload length
// (2), type (1); the recyclable types add the log number (4). The CRC covers the type byte,
// the log number if any, and the payload.
constexpr int64_t kBlockSize = 32768;
constexpr int64_t kHeaderSize = 7;
constexpr int64_t kRecyclableHeaderSize = 11;
enum RecordType : uint8_t {
  kZeroType = 0,
  kFullType = 1,
  kFirstType = 2,
  kMiddleType = 3,
  kLastType = 4,
  kRecyclableFullType = 5,
  kRecyclableLastType = 8,
  kSetCompressionType = 9,
};
constexpr uint32_t kMaskDelta = 0xa282ead8u;

uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// CRC32C through RocksDB's public file-checksum generator: the same function its log writer
// uses, without a second implementation here.
uint32_t Crc32c(const char* data, size_t n) {
  static const auto factory = rocksdb::GetFileChecksumGenCrc32cFactory();
  auto gen = factory->CreateFileChecksumGenerator(rocksdb::FileChecksumGenContext());
  gen->Update(data, n);
  gen->Finalize();
  const std::string be = gen->GetChecksum();  // big endian
  return (uint32_t{static_cast<uint8_t>(be[0])} << 24) | (uint32_t{static_cast<uint8_t>(be[1])} << 16) |
         (uint32_t{static_cast<uint8_t>(be[2])} << 8) | uint32_t{static_cast<uint8_t>(be[3])};
}

uint32_t Load32Le(const char* p) {
  return uint32_t{static_cast<uint8_t>(p[0])} | (uint32_t{static_cast<uint8_t>(p[1])} << 8) |
         (uint32_t{static_cast<uint8_t>(p[2])} << 16) | (uint32_t{static_cast<uint8_t>(p[3])} << 24);
}

// Whether a whole record with a valid checksum starts anywhere in block[from, n).
bool IntactRecordAfter(const char* block, int64_t from, int64_t n) {
  for (int64_t at = from; at + kHeaderSize <= n; ++at) {
    const char* h = block + at;
    const uint8_t type = static_cast<uint8_t>(h[6]);
    if (type < kFullType || type > kRecyclableLastType) continue;
    const int64_t header = type >= kRecyclableFullType ? kRecyclableHeaderSize : kHeaderSize;
    const int64_t length = int64_t{static_cast<uint8_t>(h[4])} | (int64_t{static_cast<uint8_t>(h[5])} << 8);
    if (at + header + length > n) continue;
    if (Crc32c(h + 6, static_cast<size_t>(header - 6 + length)) == Unmask(Load32Le(h))) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<WalDamage> CheckWalFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::error_code ec;
  const int64_t size = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (ec) return absl::UnavailableError(absl::StrCat("cannot stat ", path, ": ", ec.message()));
  WalDamage out;
  auto damaged = [&](int64_t offset, std::string reason) {
    out.file = path;
    out.offset = offset;
    out.size = size;
    out.reason = std::move(reason);
    return out;
  };
  std::string block(kBlockSize, '\0');
  bool in_fragments = false;
  int64_t record_start = 0;  // where the fragmented record being read began
  for (int64_t base = 0; base < size; base += kBlockSize) {
    const int64_t n = std::min(kBlockSize, size - base);
    if (!in.read(block.data(), n)) return absl::UnavailableError(absl::StrCat("cannot read ", path));
    const bool last_block = base + n >= size;
    for (int64_t at = 0; n - at >= kHeaderSize;) {
      const char* h = block.data() + at;
      const uint8_t type = static_cast<uint8_t>(h[6]);
      const int64_t length = int64_t{static_cast<uint8_t>(h[4])} | (int64_t{static_cast<uint8_t>(h[5])} << 8);
      // Preallocated, never written space: nothing more in this block.
      if (type == kZeroType && length == 0) break;
      if (type > kSetCompressionType) return damaged(base + at, absl::StrCat("unknown record type ", int{type}));
      const bool recyclable = type >= kRecyclableFullType && type <= kRecyclableLastType;
      const int64_t header = recyclable ? kRecyclableHeaderSize : kHeaderSize;
      if (at + header + length > n) {
        if (!last_block) return damaged(base + at, "record length past the end of its block");
        // Past the end of the file: a write torn by a crash, never acknowledged, unless
        // intact records follow, which a damaged length field hides (RocksDB takes that for a
        // torn write too, and drops them all).
        if (IntactRecordAfter(block.data(), at + kHeaderSize, n)) {
          return damaged(base + at, "record length past the end of the file, with intact records after it");
        }
        return out;
      }
      if (Crc32c(h + 6, static_cast<size_t>(header - 6 + length)) != Unmask(Load32Le(h))) {
        return damaged(base + at, "checksum mismatch");
      }
      const uint8_t kind = recyclable ? type - (kRecyclableFullType - kFullType) : type;
      if (kind == kFirstType || kind == kMiddleType || kind == kLastType) {
        if ((kind == kFirstType) == in_fragments) {
          return damaged(kind == kFirstType ? record_start : base + at, "fragments of a record out of order");
        }
        if (kind == kFirstType) record_start = base + at;
        in_fragments = kind != kLastType;
      } else if (in_fragments && kind == kFullType) {
        return damaged(record_start, "a record's fragments end without its last one");
      }
      at += header + length;
    }
  }
  return out;
}

absl::StatusOr<std::vector<WalDamage>> CheckWalFiles(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".log" && e.is_regular_file()) files.push_back(e.path().string());
  }
  if (ec) return absl::UnavailableError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  // RocksDB numbers its files with zero-padded decimals: name order is age order.
  std::sort(files.begin(), files.end());
  std::vector<WalDamage> out;
  for (const std::string& f : files) {
    absl::StatusOr<WalDamage> d = CheckWalFile(f);
    if (absl::IsNotFound(d.status())) continue;  // removed meanwhile by RocksDB: obsolete
    if (!d.ok()) return d.status();
    if (!d->file.empty()) out.push_back(*std::move(d));
  }
  return out;
}

std::string DescribeWalDamage(const WalDamage& d) {
  return absl::StrCat("write-ahead log ", d.file, " is damaged at byte ", d.offset, " of ", d.size, " (", d.reason,
                      "); the ", d.size - d.offset, " bytes from there hold writes, acknowledged ones among them, that would be lost");
}

}  // namespace crm::eventlog
