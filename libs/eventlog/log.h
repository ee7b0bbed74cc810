#ifndef CRM_LIBS_EVENTLOG_LOG_H_
#define CRM_LIBS_EVENTLOG_LOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/await.h"

namespace crm::common::v1 {
class EventEnvelope;
}  // namespace crm::common::v1

namespace crm::eventlog {

struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header&) const = default;
};

// What a writer appends: the key (aggregate id) is given per append, not per message.
struct Message {
  std::string value;
  std::vector<Header> headers;
};

// What the writer that sealed a record knew of it besides its bytes: the write kernel's fold
// of the event (projection::SealedFold), for the projections applying that writer's own
// appends. Opaque here; the projection that knows the type takes it (docs/architecture.md §3).
class RecordAnnex {
 public:
  virtual ~RecordAnnex() = default;
};

// One record read back from the log.
struct Record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::string key;
  std::string value;
  std::vector<Header> headers;
  // The envelope `value` encodes, as this process sealed it a moment ago: set only by the
  // writer that sealed and appended the record (libs/projection AggregateWriter), for the
  // projections applying its own writes, so they neither parse nor hash again what it just
  // encoded and hashed. Null for every record read from a log. Valid during the apply call.
  const common::v1::EventEnvelope* sealed = nullptr;
  // The writer's fold of the event, when the writer that sealed the record folded it: set
  // under the same conditions as `sealed`, null otherwise. Valid during the apply call.
  const RecordAnnex* annex = nullptr;
};

// Where a reader starts in one partition: the offset of the first record it wants.
struct Position {
  int32_t partition = 0;
  int64_t offset = 0;
  bool operator==(const Position&) const = default;
};

// Where the records of one append landed, in message order. Durable when reported.
struct Appended {
  int32_t partition = 0;
  std::vector<int64_t> offsets;
  int64_t timestamp_ms = 0;
};

using AppendCallback = absl::AnyInvocable<void(absl::StatusOr<Appended>)>;

// What an append expects of its event stream (one aggregate's events, e.g. "customer/<id>"):
// the log's own check that no two events of a stream get the same version, like a unique
// (aggregate, version) key in a database, with EventStoreDB's three kinds of expectation.
// Versions count from 1: a stream at version v holds v events, and an append of n messages
// moves it to v + n. A stream the log holds no version for (appended to only without a
// condition, by tools or by a binary from before versions were kept) takes the first
// conditional append as it comes and is checked from then on.
class ExpectedVersion {
 public:
  enum class Kind { kAny, kNoStream, kExact };

  // No condition: written as Writer::Append writes, reading and keeping no version. For
  // records outside aggregate streams (relays, dead letters); appending with Any to a stream
  // that also takes conditional appends moves it past its kept version, so its next
  // conditional append is refused as a gap.
  static ExpectedVersion Any() { return ExpectedVersion(Kind::kAny, 0); }
  // The stream holds no event yet: the first append of a new aggregate.
  static ExpectedVersion NoStream() { return ExpectedVersion(Kind::kNoStream, 0); }
  // The stream stands at `version` (its last event's aggregate_version). `version` must be at
  // least 1: NoStream() is the expectation of a stream without events, and a writer refuses
  // Exact(0) or below with INVALID_ARGUMENT.
  static ExpectedVersion Exact(int64_t version) { return ExpectedVersion(Kind::kExact, version); }

  Kind kind() const { return kind_; }
  // The expected version for kExact; 0 otherwise.
  int64_t version() const { return version_; }
  bool operator==(const ExpectedVersion&) const = default;

 private:
  ExpectedVersion(Kind kind, int64_t version) : kind_(kind), version_(version) {}
  Kind kind_;
  int64_t version_;
};

// INVALID_ARGUMENT, naming what is wrong, when an append cannot carry `expected` for
// `stream`: a condition (NoStream, Exact) on an empty stream name, or Exact below 1. Every
// Writer refuses such an append before writing anything, whether or not it checks versions.
absl::Status ValidateExpectation(absl::string_view stream, const ExpectedVersion& expected);

// The single writer of one topic (docs/architecture.md §2). Obtained from Log::OpenWriter.
// Thread-safe: Append may be called from any thread.
class Writer {
 public:
  // Stops taking appends (a later Append gets UNAVAILABLE), writes or fails what was taken
  // within the backend's bound (EmbeddedLogOptions::close_timeout, KafkaLogOptions::
  // append_timeout): those not written in time get UNAVAILABLE. Every callback has run,
  // exactly once, when the destructor returns, so callbacks may use what their owner destroys
  // after the writer.
  virtual ~Writer() = default;

  // Appends `messages` under `key` atomically (all or none) to the key's partition and calls
  // `done` once they are durable, or with the error. UNAVAILABLE when they may or may not have
  // been written (a retry needs an idempotency key, such as the request_id in the envelopes);
  // every other error means nothing was written: RESOURCE_EXHAUSTED while the disk is full
  // or too many appends are queued,
  // FAILED_PRECONDITION once this writer was fenced by a newer one, INVALID_ARGUMENT for an
  // empty append. `done` runs on the writer's own thread,
  // in log order per partition, and must not block for long: it delays every later append.
  virtual void Append(std::string key, std::vector<Message> messages, AppendCallback done) = 0;

  // Appends as Append does, under the condition that `stream` stands where `expected` says.
  // Nothing is written and `done` gets ABORTED when the stream is past it (NoStream on a
  // stream that has events, or Exact below where it stands: a writer that decided on stale
  // state), DATA_LOSS when Exact is beyond it (a gap), or INVALID_ARGUMENT as
  // ValidateExpectation says. The embedded log checks the condition in the same commit as the
  // write. On Kafka the condition is validated but not checked: a broker has no per-key
  // condition, and there the guard is the topic's single fenced writer (Log::OpenWriter: a
  // newer writer fences the older one) deciding under a per-aggregate lease on projections
  // caught up with the log (projection::AggregateWriter); the append is written as Append.
  virtual void AppendExpecting(std::string key, std::vector<Message> messages, std::string stream,
                               ExpectedVersion expected, AppendCallback done) = 0;

  // Blocking form of Append, for tools and tests: waits at most options.timeout, then
  // DEADLINE_EXCEEDED (the append may still land; its callback then goes nowhere).
  absl::StatusOr<Appended> AppendSync(std::string key, std::vector<Message> messages,
                                      const AwaitOptions& options = {.what = "the append"});

  virtual const std::string& topic() const = 0;

  // How often this writer had to re-read its tail because an append's outcome was unknown
  // (0 for backends where that cannot happen). For operators' dashboards.
  virtual int64_t recoveries() const { return 0; }
};

// A reader of some partitions of one topic from given positions. Not thread-safe except
// Wake(), which may be called from any thread.
class Subscription {
 public:
  virtual ~Subscription() = default;

  // Returns up to `max_records` records in offset order per partition, waiting up to
  // `timeout` for the first one without busy polling; empty when nothing arrived in time
  // or Wake() was called.
  virtual absl::StatusOr<std::vector<Record>> Poll(size_t max_records, absl::Duration timeout) = 0;

  // Makes a blocked or the next Poll return at once.
  virtual void Wake() = 0;

  // The offset of the next record Poll() can return for `partition`, counting records that
  // are never delivered (Kafka transaction markers) as passed once the reader has seen past
  // them. A reader is caught up with an end offset E once Position() >= E.
  virtual int64_t Position(int32_t partition) const = 0;
};

// A partitioned, append-only log of topics (docs/architecture.md §2). Implementations are thread-safe.
class Log {
 public:
  virtual ~Log() = default;

  // Creates `topic` with `partitions` partitions; OK when it exists with that many already.
  // FAILED_PRECONDITION when it exists with another count.
  virtual absl::Status CreateTopic(absl::string_view topic, int32_t partitions) = 0;

  // NOT_FOUND when the topic does not exist.
  virtual absl::StatusOr<int32_t> PartitionCount(absl::string_view topic) = 0;

  // The offset the next record of each partition will get (the end of what a reader sees).
  virtual absl::StatusOr<std::vector<int64_t>> EndOffsets(absl::string_view topic) = 0;

  // Becomes the single writer of `topic`. FAILED_PRECONDITION when another writer of this
  // log instance holds it. Across processes, the embedded log refuses a second process at
  // open; on Kafka the newer writer fences the older one, whose appends then fail.
  virtual absl::StatusOr<std::unique_ptr<Writer>> OpenWriter(absl::string_view topic) = 0;

  // Reads the partitions named in `from`, each from its offset.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(absl::string_view topic,
                                                                 std::vector<Position> from) = 0;
};

// The partition of `key` among `partitions`: Kafka's murmur2 partitioner, the same the Java
// client uses, so every producer of a topic agrees where an aggregate lives.
int32_t PartitionForKey(absl::string_view key, int32_t partitions);

// Reads every record of `topic` from `from` up to the end offsets at the time of the call.
// DEADLINE_EXCEEDED when that takes longer than `timeout` (the log is unreachable).
absl::StatusOr<std::vector<Record>> ReadToEnd(Log& log, absl::string_view topic,
                                              std::vector<Position> from,
                                              absl::Duration timeout = absl::Seconds(60));

}  // namespace crm::eventlog

#endif  // CRM_LIBS_EVENTLOG_LOG_H_
