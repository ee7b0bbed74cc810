#ifndef CRM_LIBS_SERVER_BLOCKING_STREAM_H_
#define CRM_LIBS_SERVER_BLOCKING_STREAM_H_

// Streaming calls served from a thread of their own with blocking Read/Write, bridged onto
// gRPC's callback reactors. For long and heavy streams (bulk import and export) whose work
// must not run on gRPC's callback threads; one thread per call, so callers bound how many run.
#include <functional>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/grpc_status.h"

namespace crm::server {

namespace internal {

// One outstanding operation at a time, waited for under a mutex.
class OpWaiter {
 public:
  void Start() {
    absl::MutexLock l(&mu_);
    pending_ = true;
  }
  void Done(bool ok) {
    absl::MutexLock l(&mu_);
    ok_ = ok;
    pending_ = false;
  }
  bool Wait() {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](bool* pending) { return !*pending; }, &pending_));
    return ok_;
  }

 private:
  absl::Mutex mu_;
  bool pending_ = false;
  bool ok_ = false;
};

// gRPC may run OnDone inline on the thread that called Finish: the body's own thread, which
// touches nothing after Finish. Any other thread waits for it.
inline void JoinOrDetach(std::thread& t) {
  if (t.get_id() == std::this_thread::get_id()) {
    t.detach();
  } else {
    t.join();
  }
}

// What both kinds of blocking stream share: the body's thread, the waiters, the end.
struct StreamCore {
  std::function<void()> on_done;
  OpWaiter read, write;
  std::thread thread;
};

// Runs `body(stream)` on the core's thread and finishes the call with its status.
template <typename Stream, typename Body>
Stream* StartBody(Stream* stream, Body body) {
  stream->core_.thread = std::thread([stream, body = std::move(body)] {
    const absl::Status st = body(stream);
    stream->Finish(ToGrpcStatus(st));
  });
  return stream;
}

// After the call is over: wait for the body's thread, tell the owner, free the stream.
template <typename Stream>
void EndStream(Stream* stream) {
  JoinOrDetach(stream->core_.thread);
  if (stream->core_.on_done) stream->core_.on_done();
  delete stream;
}

}  // namespace internal

// A client- or bidi-streaming call. `body` runs on a new thread with the stream; the call
// finishes with its status; `on_done` runs once the call is over.
template <typename Req, typename Resp>
class BlockingBidiStream final : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  using Body = std::function<absl::Status(BlockingBidiStream*)>;
  static BlockingBidiStream* Start(Body body, std::function<void()> on_done) {
    return internal::StartBody(new BlockingBidiStream(std::move(on_done)), std::move(body));
  }
  // The next message; false once the client closed its side or the call broke.
  bool Read(Req* req) {
    core_.read.Start();
    this->StartRead(req);
    return core_.read.Wait();
  }
  // False when the call broke (the client went away).
  bool Write(const Resp& resp) {
    core_.write.Start();
    this->StartWrite(&resp);
    return core_.write.Wait();
  }

 private:
  template <typename S, typename B>
  friend S* internal::StartBody(S*, B);
  template <typename S>
  friend void internal::EndStream(S*);
  explicit BlockingBidiStream(std::function<void()> on_done) { core_.on_done = std::move(on_done); }
  void OnReadDone(bool ok) override { core_.read.Done(ok); }
  void OnWriteDone(bool ok) override { core_.write.Done(ok); }
  void OnDone() override { internal::EndStream(this); }
  internal::StreamCore core_;
};

// A server-streaming call, likewise.
template <typename Resp>
class BlockingWriteStream final : public grpc::ServerWriteReactor<Resp> {
 public:
  using Body = std::function<absl::Status(BlockingWriteStream*)>;
  static BlockingWriteStream* Start(Body body, std::function<void()> on_done) {
    return internal::StartBody(new BlockingWriteStream(std::move(on_done)), std::move(body));
  }
  // False when the call broke (the client went away).
  bool Write(const Resp& resp) {
    core_.write.Start();
    this->StartWrite(&resp);
    return core_.write.Wait();
  }

 private:
  template <typename S, typename B>
  friend S* internal::StartBody(S*, B);
  template <typename S>
  friend void internal::EndStream(S*);
  explicit BlockingWriteStream(std::function<void()> on_done) { core_.on_done = std::move(on_done); }
  void OnWriteDone(bool ok) override { core_.write.Done(ok); }
  void OnDone() override { internal::EndStream(this); }
  internal::StreamCore core_;
};

// Calls refused before they start (admission, authentication): finished at once, no thread.
template <typename Req, typename Resp>
class RefusedBidiStream final : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  explicit RefusedBidiStream(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

template <typename Resp>
class RefusedWriteStream final : public grpc::ServerWriteReactor<Resp> {
 public:
  explicit RefusedWriteStream(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_BLOCKING_STREAM_H_
