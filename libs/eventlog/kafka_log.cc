#include "libs/eventlog/kafka_log.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/common/thread_name.h"
#include "libs/eventlog/answer_group.h"

namespace crm::eventlog {
namespace {

int TimeoutMs(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

absl::Status FromKafka(RdKafka::ErrorCode code, absl::string_view what) {
  if (code == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
  const std::string msg = absl::StrCat(what, ": ", RdKafka::err2str(code));
  switch (code) {
    case RdKafka::ERR__TIMED_OUT:
    case RdKafka::ERR__TRANSPORT:
    case RdKafka::ERR__ALL_BROKERS_DOWN:
    case RdKafka::ERR_NOT_ENOUGH_REPLICAS:
    case RdKafka::ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RdKafka::ERR_REQUEST_TIMED_OUT:
    case RdKafka::ERR_LEADER_NOT_AVAILABLE:
    case RdKafka::ERR_NOT_LEADER_FOR_PARTITION:
      return absl::UnavailableError(msg);
    case RdKafka::ERR_UNKNOWN_TOPIC_OR_PART:
    case RdKafka::ERR__UNKNOWN_TOPIC:
      return absl::NotFoundError(msg);
    case RdKafka::ERR__FENCED:
    case RdKafka::ERR_PRODUCER_FENCED:
    case RdKafka::ERR_INVALID_PRODUCER_EPOCH:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status FromKafkaError(RdKafka::Error* e, absl::string_view what) {
  std::unique_ptr<RdKafka::Error> owned(e);
  if (e == nullptr) return absl::OkStatus();
  absl::Status s = FromKafka(e->code(), what);
  if (e->is_fatal()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": fatal: ", e->str()));
  }
  return s.ok() ? absl::InternalError(absl::StrCat(what, ": ", e->str())) : s;
}

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(
    const KafkaLogOptions& o, const std::map<std::string, std::string>& more) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  std::map<std::string, std::string> all = {{"bootstrap.servers", o.bootstrap_servers},
                                            {"client.id", o.client_id},
                                            {"log_level", "3"}};
  for (const auto& [k, v] : more) all[k] = v;
  // Extra properties tune anything but what durability, ordering and fencing rest on.
  static const std::set<std::string> kFixed = {"transactional.id", "enable.idempotence", "acks",
                                               "isolation.level", "enable.auto.commit",
                                               "enable.auto.offset.store"};
  for (const auto& [k, v] : o.extra) {
    if (kFixed.contains(k) && more.contains(k)) {
      return absl::InvalidArgumentError(absl::StrCat("kafka config ", k, " cannot be overridden"));
    }
    all[k] = v;
  }
  for (const auto& [k, v] : all) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka config ", k, ": ", err));
    }
  }
  return conf;
}

std::vector<Header> ReadHeaders(RdKafka::Message& m) {
  std::vector<Header> out;
  if (RdKafka::Headers* hs = m.headers()) {
    for (const auto& h : hs->get_all()) {
      out.push_back({h.key(), std::string(static_cast<const char*>(h.value()), h.value_size())});
    }
  }
  return out;
}

struct Pending {
  std::string key;
  std::vector<Message> messages;
  AppendCallback done;
  int32_t partition = 0;
  std::vector<int64_t> offsets;
  RdKafka::ErrorCode err = RdKafka::ERR_NO_ERROR;
};

// Delivery reports write the offset of each message into its slot (msg_opaque). Slots live
// for one CommitGroup, and reports are only served inside it (produce's poll, commit and
// abort flush them). When it returns with reports still outstanding (a commit or abort gave
// up), the producer is never polled again: Recover destroys it, and librdkafka drops the
// reports it still holds without calling dr_cb; after a fatal error nothing polls it. Keep it
// so (KafkaLateDeliveryTest, run under -fsanitize=address).
struct Slot {
  Pending* pending;
  size_t index;
};

// Whether every message of `group` had its delivery report (a failed one marks its append).
bool AllReported(const std::vector<std::unique_ptr<Pending>>& group) {
  for (const auto& p : group) {
    if (p->err != RdKafka::ERR_NO_ERROR) continue;
    for (int64_t offset : p->offsets) {
      if (offset < 0) return false;
    }
  }
  return true;
}

class DeliveryCb final : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& m) override {
    auto* slot = static_cast<Slot*>(m.msg_opaque());
    if (slot == nullptr) return;
    if (m.err() != RdKafka::ERR_NO_ERROR) {
      slot->pending->err = m.err();
    } else {
      slot->pending->offsets[slot->index] = m.offset();
    }
  }
};

class KafkaLog;

class KafkaWriter final : public Writer {
 public:
  KafkaWriter(KafkaLog* log, std::string topic, int32_t partitions, std::vector<int64_t> ends)
      : log_(log), topic_(std::move(topic)), partitions_(partitions), known_end_(std::move(ends)) {}

  ~KafkaWriter() override;

  absl::Status Start();

  // Validated, not checked (see Writer::AppendExpecting): a Kafka broker has no per-key
  // condition; the single fenced writer and the per-aggregate lease are the guard.
  void AppendExpecting(std::string key, std::vector<Message> messages, std::string stream,
                       ExpectedVersion expected, AppendCallback done) override {
    if (absl::Status s = ValidateExpectation(stream, expected); !s.ok()) return done(std::move(s));
    Append(std::move(key), std::move(messages), std::move(done));
  }

  void Append(std::string key, std::vector<Message> messages, AppendCallback done) override {
    if (messages.empty()) {
      done(absl::InvalidArgumentError("empty append"));
      return;
    }
    auto p = std::make_unique<Pending>();
    p->key = std::move(key);
    p->messages = std::move(messages);
    p->done = std::move(done);
    p->partition = PartitionForKey(p->key, partitions_);
    absl::Status refused;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) {
        refused = ClientSafe(absl::UnavailableError("the event log is stopping; nothing was written"));
      } else if (!fatal_.ok()) {
        refused = fatal_;
      } else {
        queue_.push_back(std::move(p));
        return;
      }
    }
    p->done(std::move(refused));
  }

  const std::string& topic() const override { return topic_; }
  int64_t recoveries() const override { return recoveries_.load(); }

 private:
  absl::Status CreateProducer();
  void Loop();
  // Runs one transaction over `group`; returns OK, or the status every append gets.
  // Sets *unknown when the outcome could not be learned.
  absl::Status CommitGroup(std::vector<std::unique_ptr<Pending>>& group, bool* unknown);
  absl::Status Recover(std::vector<std::unique_ptr<Pending>>& group);
  // Hands `status` as the answer of every append of `ps` to the answerer, in order.
  template <typename Pendings>
  void AnswerAll(Pendings& ps, const absl::Status& status) {
    std::vector<Answer> answers;
    answers.reserve(ps.size());
    for (auto& p : ps) answers.push_back({std::move(p->done), status});
    answerer_->Hand(std::move(answers));
  }

  KafkaLog* log_;
  const std::string topic_;
  const int32_t partitions_;
  std::vector<int64_t> known_end_;  // writer thread only
  std::atomic<int64_t> recoveries_{0};
  DeliveryCb dr_cb_;
  std::unique_ptr<RdKafka::Producer> producer_;  // writer thread only after Start()
  // Runs the callbacks of each written group while the writer thread writes the next.
  std::unique_ptr<Answerer> answerer_;
  std::thread thread_;
  absl::Mutex mu_;
  std::deque<std::unique_ptr<Pending>> queue_ ABSL_GUARDED_BY(mu_);
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Once stopping: appends still queued at this time are failed, not written.
  absl::Time stop_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

class KafkaSubscription final : public Subscription {
 public:
  explicit KafkaSubscription(std::unique_ptr<RdKafka::KafkaConsumer> c) : consumer_(std::move(c)) {}
  ~KafkaSubscription() override { consumer_->close(); }

  absl::StatusOr<std::vector<Record>> Poll(size_t max_records, absl::Duration timeout) override {
    std::vector<Record> out;
    const absl::Time deadline = absl::Now() + timeout;
    while (out.size() < max_records) {
      if (woken_.exchange(false)) break;
      // Blocks inside librdkafka until a message or the slice ends; slices let Wake() in.
      const absl::Duration left = out.empty() ? deadline - absl::Now() : absl::ZeroDuration();
      const int wait_ms = std::max(0, std::min(100, TimeoutMs(left)));
      std::unique_ptr<RdKafka::Message> m(consumer_->consume(wait_ms));
      if (m->err() == RdKafka::ERR__PARTITION_EOF) {
        // The fetch position reached the partition's end, past any transaction marker.
        Advance(m->partition(), m->offset());
        if (!out.empty()) break;
        continue;
      }
      if (m->err() == RdKafka::ERR__TIMED_OUT) {
        if (!out.empty() || absl::Now() >= deadline) break;
        continue;
      }
      if (m->err() != RdKafka::ERR_NO_ERROR) return FromKafka(m->err(), "consume");
      Record r;
      r.topic = m->topic_name();
      r.partition = m->partition();
      r.offset = m->offset();
      r.timestamp_ms = m->timestamp().timestamp;
      if (m->key()) r.key = *m->key();
      r.value.assign(static_cast<const char*>(m->payload()), m->len());
      r.headers = ReadHeaders(*m);
      Advance(r.partition, r.offset + 1);
      out.push_back(std::move(r));
    }
    return out;
  }

  void Wake() override { woken_ = true; }

  int64_t Position(int32_t partition) const override {
    auto it = position_.find(partition);
    return it == position_.end() ? 0 : it->second;
  }

  void Start(const std::vector<::crm::eventlog::Position>& from) {
    for (const auto& p : from) position_[p.partition] = p.offset;
  }

 private:
  void Advance(int32_t partition, int64_t offset) {
    int64_t& p = position_[partition];
    p = std::max(p, offset);
  }

  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::atomic<bool> woken_{false};
  std::map<int32_t, int64_t> position_;
};

class KafkaLog final : public Log {
 public:
  explicit KafkaLog(KafkaLogOptions o) : options_(std::move(o)) {}

  absl::Status Init() {
    // Metadata look-ups must not create topics as a side effect.
    CRM_ASSIGN_OR_RETURN(auto conf, MakeConf(options_, {{"allow.auto.create.topics", "false"}}));
    std::string err;
    meta_.reset(RdKafka::Producer::create(conf.get(), err));
    if (!meta_) return absl::InternalError(absl::StrCat("kafka client: ", err));
    return absl::OkStatus();
  }

  absl::Status CreateTopic(absl::string_view topic, int32_t partitions) override {
    if (topic.empty()) return absl::InvalidArgumentError("topic name is empty");
    if (partitions < 1) return absl::InvalidArgumentError("partitions must be >= 1");
    absl::StatusOr<int32_t> n = PartitionCount(topic);
    absl::Status created = absl::OkStatus();
    if (absl::IsNotFound(n.status())) {
      created = AdminCreate(topic, partitions);
      // Brokers without CreateTopics (the mock cluster) land here too: what counts is that
      // the topic exists with the asked count.
      n = PartitionCount(topic);
    }
    if (!n.ok()) return created.ok() ? n.status() : created;
    if (*n != partitions) {
      return absl::FailedPreconditionError(
          absl::StrCat("topic ", topic, " exists with ", *n, " partitions"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int32_t> PartitionCount(absl::string_view topic) override {
    // All-topics metadata: asking for one topic by name makes some brokers (the mock
    // cluster among them) create it.
    RdKafka::Metadata* md = nullptr;
    CRM_RETURN_IF_ERROR(FromKafka(meta_->metadata(true, nullptr, &md, 5000), "metadata"));
    std::unique_ptr<RdKafka::Metadata> owned(md);
    for (const auto* tm : *md->topics()) {
      if (tm->topic() != topic) continue;
      if (tm->err() != RdKafka::ERR_NO_ERROR) return FromKafka(tm->err(), "topic metadata");
      return static_cast<int32_t>(tm->partitions()->size());
    }
    return absl::NotFoundError(absl::StrCat("no topic ", topic));
  }

  absl::StatusOr<std::vector<int64_t>> EndOffsets(absl::string_view topic) override {
    CRM_ASSIGN_OR_RETURN(int32_t n, PartitionCount(topic));
    std::vector<int64_t> out(n);
    for (int32_t p = 0; p < n; ++p) {
      int64_t low = 0, high = 0;
      CRM_RETURN_IF_ERROR(FromKafka(
          meta_->query_watermark_offsets(std::string(topic), p, &low, &high, 5000), "watermarks"));
      out[p] = high;
    }
    return out;
  }

  absl::StatusOr<std::unique_ptr<Writer>> OpenWriter(absl::string_view topic) override {
    {
      absl::MutexLock l(&mu_);
      if (writers_.contains(std::string(topic))) {
        return absl::FailedPreconditionError(absl::StrCat("topic ", topic, " already has a writer"));
      }
    }
    CRM_ASSIGN_OR_RETURN(int32_t n, PartitionCount(topic));
    CRM_ASSIGN_OR_RETURN(std::vector<int64_t> ends, EndOffsets(topic));
    {
      absl::MutexLock l(&mu_);
      if (!writers_.insert(std::string(topic)).second) {
        return absl::FailedPreconditionError(
            absl::StrCat("topic ", topic, " already has a writer"));
      }
    }
    auto w = std::make_unique<KafkaWriter>(this, std::string(topic), n, std::move(ends));
    if (absl::Status s = w->Start(); !s.ok()) {
      w.reset();  // its destructor releases the claim
      return s;
    }
    return w;
  }

  void ReleaseWriter(const std::string& topic) {
    absl::MutexLock l(&mu_);
    writers_.erase(topic);
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(absl::string_view topic,
                                                         std::vector<Position> from) override {
    CRM_ASSIGN_OR_RETURN(int32_t n, PartitionCount(topic));
    for (const Position& p : from) {
      if (p.partition < 0 || p.partition >= n) {
        return absl::InvalidArgumentError(absl::StrCat("partition ", p.partition, " out of range"));
      }
      if (p.offset < 0) return absl::InvalidArgumentError("negative offset");
    }
    CRM_ASSIGN_OR_RETURN(auto conf, MakeConf(options_, {
        {"group.id", absl::StrCat("crm-reader-", NewUuidV7(absl::Now()))},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "true"},  // tells Position() a partition's end was reached
        {"fetch.wait.max.ms", "50"},
    }));
    std::string err;
    std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
    if (!c) return absl::InternalError(absl::StrCat("kafka consumer: ", err));
    std::vector<RdKafka::TopicPartition*> tps;
    for (const Position& p : from) {
      tps.push_back(RdKafka::TopicPartition::create(std::string(topic), p.partition, p.offset));
    }
    RdKafka::ErrorCode code = c->assign(tps);
    RdKafka::TopicPartition::destroy(tps);
    CRM_RETURN_IF_ERROR(FromKafka(code, "assign"));
    auto sub = std::make_unique<KafkaSubscription>(std::move(c));
    sub->Start(from);
    return sub;
  }

  const KafkaLogOptions& options() const { return options_; }

 private:
  absl::Status AdminCreate(absl::string_view topic, int32_t partitions) {
    char errstr[512];
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(std::string(topic).c_str(), partitions,
                                                    /*replication_factor=*/-1, errstr,
                                                    sizeof errstr);
    if (nt == nullptr) return absl::InvalidArgumentError(errstr);
    rd_kafka_t* rk = meta_->c_ptr();
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, 5000, errstr, sizeof errstr);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 7000);
    absl::Status s = absl::DeadlineExceededError("CreateTopics timed out");
    if (ev != nullptr) {
      s = absl::OkStatus();
      if (rd_kafka_event_error(ev)) {
        s = absl::UnavailableError(rd_kafka_event_error_string(ev));
      } else if (const auto* res = rd_kafka_event_CreateTopics_result(ev)) {
        size_t cnt = 0;
        const rd_kafka_topic_result_t** trs = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t i = 0; i < cnt; ++i) {
          rd_kafka_resp_err_t e = rd_kafka_topic_result_error(trs[i]);
          if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            s = absl::UnavailableError(rd_kafka_topic_result_error_string(trs[i]));
          }
        }
      }
      rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    return s;
  }

  const KafkaLogOptions options_;
  std::unique_ptr<RdKafka::Producer> meta_;  // metadata and watermarks
  absl::Mutex mu_;
  std::set<std::string> writers_ ABSL_GUARDED_BY(mu_);
};

KafkaWriter::~KafkaWriter() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    stop_deadline_ = absl::Now() + log_->options().append_timeout;
  }
  if (thread_.joinable()) thread_.join();
  // Runs the answers still handed over: every callback has run when the writer is gone.
  answerer_.reset();
  log_->ReleaseWriter(topic_);
}

absl::Status KafkaWriter::CreateProducer() {
  const KafkaLogOptions& o = log_->options();
  CRM_ASSIGN_OR_RETURN(auto conf, MakeConf(o, {
      {"transactional.id", absl::StrCat(o.transactional_id_prefix, ".", topic_)},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "0"},
      // One request in flight per broker connection: with pipelined requests librdkafka
      // 2.0's mock broker answers the second one ~40 ms late (measured: 64 clients went from
      // 690 to 3200 creates/s). A transaction already batches everything queued, so little
      // is lost against a real broker; KafkaLogOptions::extra can override it.
      {"max.in.flight.requests.per.connection", "1"},
      {"message.timeout.ms", std::to_string(TimeoutMs(o.append_timeout))},
      {"transaction.timeout.ms", std::to_string(std::max(60000, 2 * TimeoutMs(o.append_timeout)))},
  }));
  std::string err;
  if (conf->set("dr_cb", &dr_cb_, err) != RdKafka::Conf::CONF_OK) return absl::InternalError(err);
  producer_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!producer_) return absl::InternalError(absl::StrCat("kafka producer: ", err));
  // Fences any older producer with this transactional.id and resolves its open transaction.
  CRM_RETURN_IF_ERROR(FromKafkaError(producer_->init_transactions(TimeoutMs(o.append_timeout)),
                                     "init_transactions"));
  // Learn the topic's leaders now: a new producer otherwise finds them on its periodic
  // metadata scan, up to ~1 s after its first produce, and its first commit (after a start
  // or a recovery) would spend that much of append_timeout waiting.
  std::unique_ptr<RdKafka::Topic> topic(RdKafka::Topic::create(producer_.get(), topic_, nullptr, err));
  if (!topic) return absl::InternalError(absl::StrCat("kafka topic: ", err));
  RdKafka::Metadata* md = nullptr;
  CRM_RETURN_IF_ERROR(FromKafka(producer_->metadata(false, topic.get(), &md, TimeoutMs(o.append_timeout)),
                                "metadata"));
  delete md;
  return absl::OkStatus();
}

absl::Status KafkaWriter::Start() {
  CRM_RETURN_IF_ERROR(CreateProducer());
  answerer_ = std::make_unique<Answerer>("kafka-answer");
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void KafkaWriter::Loop() {
  NameThisThread("kafka-writer");
  bool recovering = false;
  std::vector<std::unique_ptr<Pending>> unresolved;
  for (;;) {
    std::vector<std::unique_ptr<Pending>> group;
    // One transaction ahead of the answers at most (Answerer).
    answerer_->WaitTaken();
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      if (!recovering) mu_.Await(absl::Condition(&ready));
      // Stopping: what is queued is written until the deadline, then failed below.
      if (stopping_ && (recovering || queue_.empty() || absl::Now() >= stop_deadline_)) break;
      while (!queue_.empty() && group.size() < log_->options().max_group_appends) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (recovering) {
      absl::Status s = Recover(unresolved);
      if (!s.ok()) {
        // The partition takes no writes until its tail is re-read.
        AnswerAll(group, absl::UnavailableError(absl::StrCat("partition in recovery: ", s.message())));
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      recovering = false;
      unresolved.clear();
      if (group.empty()) continue;
    }
    bool unknown = false;
    absl::Status s = CommitGroup(group, &unknown);
    if (unknown) {
      recovering = true;
      unresolved = std::move(group);
      continue;
    }
    if (absl::IsFailedPrecondition(s)) {
      absl::MutexLock l(&mu_);
      fatal_ = s;
    }
    std::vector<Answer> answers;
    answers.reserve(group.size());
    for (auto& p : group) {
      if (s.ok()) {
        Appended a;
        a.partition = p->partition;
        a.offsets = p->offsets;
        a.timestamp_ms = absl::ToUnixMillis(absl::Now());
        known_end_[p->partition] = std::max(known_end_[p->partition], p->offsets.back() + 1);
        answers.push_back({std::move(p->done), std::move(a)});
      } else {
        answers.push_back({std::move(p->done), s});
      }
    }
    answerer_->Hand(std::move(answers));
    if (absl::IsFailedPrecondition(s)) {
      // Fenced: fail whatever is still queued and everything that comes later.
      std::deque<std::unique_ptr<Pending>> rest;
      {
        absl::MutexLock l(&mu_);
        rest.swap(queue_);
      }
      AnswerAll(rest, s);
    }
  }
  AnswerAll(unresolved, absl::UnavailableError("writer stopped during recovery"));
  std::deque<std::unique_ptr<Pending>> rest;
  {
    absl::MutexLock l(&mu_);
    rest.swap(queue_);
  }
  AnswerAll(rest, ClientSafe(absl::UnavailableError("the event log stopped before the write was made; nothing was written")));
}

absl::Status KafkaWriter::CommitGroup(std::vector<std::unique_ptr<Pending>>& group,
                                      bool* unknown) {
  {
    absl::MutexLock l(&mu_);
    if (!fatal_.ok()) return fatal_;
  }
  const int timeout_ms = TimeoutMs(log_->options().append_timeout);
  CRM_RETURN_IF_ERROR(FromKafkaError(producer_->begin_transaction(), "begin_transaction"));
  std::vector<Slot> slots;
  size_t total = 0;
  for (auto& p : group) total += p->messages.size();
  slots.reserve(total);
  absl::Status produce_status;
  for (auto& p : group) {
    p->offsets.assign(p->messages.size(), -1);
    for (size_t i = 0; i < p->messages.size() && produce_status.ok(); ++i) {
      const Message& m = p->messages[i];
      RdKafka::Headers* hs = RdKafka::Headers::create();
      for (const Header& h : m.headers) hs->add(h.key, h.value.data(), h.value.size());
      slots.push_back({p.get(), i});
      for (;;) {
        RdKafka::ErrorCode code = producer_->produce(
            topic_, p->partition, RdKafka::Producer::RK_MSG_COPY,
            const_cast<char*>(m.value.data()), m.value.size(), p->key.data(), p->key.size(), 0,
            hs, &slots.back());
        if (code == RdKafka::ERR__QUEUE_FULL) {
          producer_->poll(10);
          continue;
        }
        if (code != RdKafka::ERR_NO_ERROR) {
          delete hs;
          produce_status = FromKafka(code, "produce");
        }
        break;
      }
    }
  }
  if (produce_status.ok()) {
    RdKafka::Error* e = producer_->commit_transaction(timeout_ms);
    // Resumed only while a delivery report is missing (the call's flush timed out). With every
    // report in, the call gave up waiting for its EndTxn, and librdkafka 2.0 hands the result
    // EndTxn sets later to the resumed call's first step, leaving each later transactional call
    // one result behind (KafkaSlowCommitTest): the outcome is unknown then.
    for (int attempt = 0; e != nullptr && e->is_retriable() && !AllReported(group) && attempt < 3; ++attempt) {
      delete e;
      e = producer_->commit_transaction(timeout_ms);
    }
    if (e == nullptr) {
      for (auto& p : group) {
        if (p->err != RdKafka::ERR_NO_ERROR) return FromKafka(p->err, "delivery");  // not expected
      }
      return absl::OkStatus();
    }
    if (e->is_fatal()) return FromKafkaError(e, "commit_transaction");
    if (!e->txn_requires_abort()) {
      // Still retriable after the retries: whether the broker committed is unknown.
      delete e;
      *unknown = true;
      return absl::UnavailableError("commit outcome unknown");
    }
    produce_status = FromKafkaError(e, "commit_transaction");
  }
  // Aborting makes the outcome known: nothing of the group was committed.
  absl::Status abort = FromKafkaError(producer_->abort_transaction(timeout_ms), "abort");
  if (absl::IsFailedPrecondition(abort)) return abort;
  if (!abort.ok()) {
    *unknown = true;
    return abort;
  }
  if (absl::IsFailedPrecondition(produce_status)) return produce_status;
  return absl::UnavailableError(absl::StrCat("append not written: ", produce_status.message()));
}

absl::Status KafkaWriter::Recover(std::vector<std::unique_ptr<Pending>>& group) {
  ++recoveries_;
  // A new producer with the same transactional.id makes the coordinator finish or abort the
  // open transaction; then read_committed readers see exactly what was committed.
  producer_.reset();
  CRM_RETURN_IF_ERROR(CreateProducer());
  std::set<int32_t> parts;
  for (auto& p : group) parts.insert(p->partition);
  std::vector<Position> from;
  for (int32_t p : parts) from.push_back({p, known_end_[p]});
  CRM_ASSIGN_OR_RETURN(std::vector<Record> tail, ReadToEnd(*log_, topic_, from));
  std::vector<Answer> answers;
  answers.reserve(group.size());
  for (auto& p : group) {
    size_t found = 0;
    for (const Record& r : tail) {
      if (r.partition == p->partition && r.key == p->key && found < p->messages.size() &&
          r.value == p->messages[found].value) {
        p->offsets[found++] = r.offset;
      }
    }
    if (found == p->messages.size()) {
      Appended a;
      a.partition = p->partition;
      a.offsets = p->offsets;
      a.timestamp_ms = absl::ToUnixMillis(absl::Now());
      answers.push_back({std::move(p->done), std::move(a)});
    } else {
      answers.push_back({std::move(p->done), absl::UnavailableError("append not written (found absent after recovery)")});
    }
  }
  answerer_->Hand(std::move(answers));
  for (const Record& r : tail) {
    known_end_[r.partition] = std::max(known_end_[r.partition], r.offset + 1);
  }
  group.clear();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Log>> OpenKafkaLog(const KafkaLogOptions& options) {
  if (options.bootstrap_servers.empty()) {
    return absl::InvalidArgumentError("kafka bootstrap servers are empty");
  }
  auto log = std::make_unique<KafkaLog>(options);
  CRM_RETURN_IF_ERROR(log->Init());
  return log;
}

absl::StatusOr<std::map<std::string, std::string>> ParseKafkaProperties(const std::vector<std::string>& key_values) {
  std::map<std::string, std::string> out;
  for (const std::string& kv : key_values) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--kafka-property: expected KEY=VALUE, got \"", kv, "\""));
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

}  // namespace crm::eventlog
