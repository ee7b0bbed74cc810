// crm-log-tamper: what an attacker who can write crmd's data files (crmd stopped) does to the
// embedded log, for tests/abuse_durability_test.py. Not shipped.
//
//   crm-log-tamper rewrite DIR TOPIC      the last event of the topic's first non-empty
//                                         partition gets another actor, its hash recomputed:
//                                         the aggregate's chain stays valid
//   crm-log-tamper delete-last DIR TOPIC  that event is removed, and its stream's version set
//                                         back: the chain stays valid, one version shorter
//
// DIR is the log's RocksDB folder (<data-dir>/log). Prints what it changed; exit 0 when done.
#include <cstdio>
#include <memory>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "crm/eventlog/v1/stored_record.pb.h"
#include "libs/eventlog/envelope.h"
#include "rocksdb/db.h"

namespace {

int Fail(const std::string& why) {
  std::fprintf(stderr, "crm-log-tamper: %s\n", why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return Fail("usage: crm-log-tamper rewrite|delete-last DIR TOPIC");
  const std::string verb = argv[1], dir = argv[2], topic = argv[3];
  rocksdb::Options options;
  rocksdb::DB* raw = nullptr;
  if (rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw); !s.ok()) return Fail(s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  // The last record of the first non-empty partition: the last event of its aggregate.
  const std::string base = absl::StrCat("r", topic, std::string("\0", 1));
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  it->Seek(base);
  if (!it->Valid() || !it->key().starts_with(base)) return Fail("no records in " + topic);
  const std::string partition_prefix = it->key().ToString().substr(0, base.size() + 4);
  std::string last_key;
  for (; it->Valid() && it->key().starts_with(partition_prefix); it->Next()) last_key = it->key().ToString();
  std::string value;
  if (!db->Get(rocksdb::ReadOptions(), last_key, &value).ok()) return Fail("cannot read the record");
  crm::eventlog::v1::StoredRecord rec;
  if (!rec.ParseFromString(value)) return Fail("not a StoredRecord");
  auto env = crm::eventlog::DecodeEnvelope(rec.value());
  if (!env.ok()) return Fail(std::string(env.status().message()));
  const int32_t partition = static_cast<int32_t>(absl::big_endian::Load32(last_key.data() + base.size()));
  const int64_t offset = static_cast<int64_t>(absl::big_endian::Load64(last_key.data() + base.size() + 4));
  const std::string what = absl::StrCat(topic, " partition ", partition, " offset ", offset, ": ",
                                        env->aggregate_type(), "/", env->aggregate_id(), " v",
                                        env->aggregate_version());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (verb == "rewrite") {
    env->mutable_actor()->set_user_id("forger");
    rec.set_value(crm::eventlog::StreamSealer(env->aggregate_version() - 1, env->prev_hash(), "").Seal(*env).value);
    if (!db->Put(wo, last_key, rec.SerializeAsString()).ok()) return Fail("cannot write");
    std::printf("rewrote %s\n", what.c_str());
  } else if (verb == "delete-last") {
    rocksdb::WriteBatch b;
    b.Delete(last_key);
    const std::string stream_key = absl::StrCat("s", topic, std::string("\0", 1), env->aggregate_type(), "/",
                                                env->aggregate_id());
    if (env->aggregate_version() > 1) {
      char v[8];
      absl::big_endian::Store64(v, static_cast<uint64_t>(env->aggregate_version() - 1));
      b.Put(stream_key, rocksdb::Slice(v, 8));
    } else {
      b.Delete(stream_key);
    }
    if (!db->Write(wo, &b).ok()) return Fail("cannot write");
    std::printf("deleted %s\n", what.c_str());
  } else {
    return Fail("unknown verb " + verb);
  }
  rocksdb::FlushOptions fo;
  db->Flush(fo).PermitUncheckedError();
  return 0;
}
