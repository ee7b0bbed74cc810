#ifndef CRM_LIBS_SERVER_BLOCKING_STREAM_H_
#define CRM_LIBS_SERVER_BLOCKING_STREAM_H_

// Streaming calls served from a thread of their own with blocking Read/Write, bridged onto
// gRPC's callback reactors. For long and heavy streams (bulk import and export) whose work
// must not run on gRPC's callback threads; one thread per call, so callers bound how many run.
#include <atomic>
#include <functional>
#include <utility>
#include <memory>
#include <optional>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/grpc_status.h"
#include "libs/server/runtime.h"

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
  // The operation's result; nullopt when it is still pending at `deadline`.
  std::optional<bool> WaitUntil(absl::Time deadline) {
    absl::MutexLock l(&mu_);
    if (!mu_.AwaitWithDeadline(absl::Condition(+[](bool* pending) { return !*pending; }, &pending_), deadline)) {
      return std::nullopt;
    }
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

// What both kinds of blocking stream share: the call's hold on the server, the body's
// thread, the waiters, the end.
struct StreamCore {
  std::shared_ptr<StreamCall> call;
  absl::Duration idle_timeout;
  std::function<void()> on_done;
  OpWaiter read, write;
  std::atomic<bool> idle{false};
  std::thread thread;

  // Waits for `op`, started by the caller; a client that lets it sit for idle_timeout (it
  // sends nothing, or reads nothing while gRPC's flow control holds our writes) has its call
  // cancelled, which completes the operation as failed.
  bool Wait(OpWaiter& op) {
    if (std::optional<bool> ok = op.WaitUntil(absl::Now() + idle_timeout)) return *ok;
    idle.store(true);
    call->Cancel();
    return op.WaitUntil(absl::InfiniteFuture()).value_or(false);
  }
};

// Runs `body(stream)` on the core's thread and finishes the call with its status.
template <typename Stream, typename Body>
Stream* StartBody(Stream* stream, Body body) {
  stream->core_.thread = std::thread([stream, body = std::move(body)] {
    absl::Status st = body(stream);
    if (stream->core_.idle.load()) {
      st = absl::DeadlineExceededError(absl::StrCat("the stream was idle for ",
                                                    absl::FormatDuration(stream->core_.idle_timeout), "; cancelled"));
    }
    // What the owner holds for the stream (a user's import slot) goes back before the client
    // hears the end: a client that starts its next import on that answer was refused for the
    // one it had just finished (e2e_import_export, under load).
    if (std::function<void()> done = std::exchange(stream->core_.on_done, nullptr)) done();
    stream->Finish(ToGrpcStatus(st));
  });
  return stream;
}

// After the call is over: wait for the body's thread, give the call's slot back, tell the
// owner if the body's thread has not (it tells it before finishing), free the stream.
template <typename Stream>
void EndStream(Stream* stream) {
  JoinOrDetach(stream->core_.thread);
  stream->core_.call->End();
  if (stream->core_.on_done) stream->core_.on_done();
  delete stream;
}

}  // namespace internal

// A client- or bidi-streaming call admitted as `call` (Runtime::BeginStream). `body` runs on a
// new thread with the stream; the call finishes with its status; `on_done` runs once `body`
// has returned, before the client is sent the status (so what it releases is free by the time
// the client learns the call ended). A read or write that waits longer than `idle_timeout`
// cancels the call.
template <typename Req, typename Resp>
class BlockingBidiStream final : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  using Body = std::function<absl::Status(BlockingBidiStream*)>;
  static BlockingBidiStream* Start(std::shared_ptr<StreamCall> call, absl::Duration idle_timeout, Body body,
                                   std::function<void()> on_done) {
    return internal::StartBody(new BlockingBidiStream(std::move(call), idle_timeout, std::move(on_done)),
                               std::move(body));
  }
  // The next message; false once the client closed its side, the call broke or sat idle.
  bool Read(Req* req) {
    core_.read.Start();
    this->StartRead(req);
    return core_.Wait(core_.read);
  }
  // False when the call broke (the client went away) or sat idle.
  bool Write(const Resp& resp) {
    core_.write.Start();
    this->StartWrite(&resp);
    return core_.Wait(core_.write);
  }

 private:
  template <typename S, typename B>
  friend S* internal::StartBody(S*, B);
  template <typename S>
  friend void internal::EndStream(S*);
  BlockingBidiStream(std::shared_ptr<StreamCall> call, absl::Duration idle_timeout, std::function<void()> on_done) {
    core_.call = std::move(call);
    core_.idle_timeout = idle_timeout;
    core_.on_done = std::move(on_done);
  }
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
  static BlockingWriteStream* Start(std::shared_ptr<StreamCall> call, absl::Duration idle_timeout, Body body,
                                    std::function<void()> on_done) {
    return internal::StartBody(new BlockingWriteStream(std::move(call), idle_timeout, std::move(on_done)),
                               std::move(body));
  }
  // False when the call broke (the client went away) or sat idle.
  bool Write(const Resp& resp) {
    core_.write.Start();
    this->StartWrite(&resp);
    return core_.Wait(core_.write);
  }

 private:
  template <typename S, typename B>
  friend S* internal::StartBody(S*, B);
  template <typename S>
  friend void internal::EndStream(S*);
  BlockingWriteStream(std::shared_ptr<StreamCall> call, absl::Duration idle_timeout, std::function<void()> on_done) {
    core_.call = std::move(call);
    core_.idle_timeout = idle_timeout;
    core_.on_done = std::move(on_done);
  }
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
