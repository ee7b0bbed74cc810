#ifndef CRM_FUZZ_FUZZ_INPUT_H_
#define CRM_FUZZ_FUZZ_INPUT_H_

// What the libFuzzer harnesses share: cutting the fuzzer's bytes into a choice, short strings
// and a protobuf message, and the rule every refusal must follow.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"

namespace crm::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}

  // One byte (0 once the input is used up).
  uint8_t Byte() {
    if (rest_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return b;
  }
  // A string of up to 255 bytes: a length byte, then that many bytes (fewer at the end).
  std::string Short() {
    const size_t n = std::min<size_t>(Byte(), rest_.size());
    std::string s(rest_.substr(0, n));
    rest_.remove_prefix(n);
    return s;
  }
  // Whatever is left.
  absl::string_view Rest() {
    absl::string_view r = rest_;
    rest_ = {};
    return r;
  }
  // Whatever is left, as `m`'s wire format; false when it is not (the input is skipped).
  bool Parse(google::protobuf::Message& m) {
    const absl::string_view r = Rest();
    return m.ParseFromArray(r.data(), static_cast<int>(r.size()));
  }

 private:
  absl::string_view rest_;
};

// A request's validation may refuse with the codes a client can act on; anything else (INTERNAL,
// UNKNOWN, DATA_LOSS ...) from input alone is a bug, and so is a refusal without a message.
inline void CheckRefusal(const absl::Status& s, const char* what) {
  if (s.ok()) return;
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnauthenticated:
      if (!s.message().empty()) return;
      break;
    default:
      break;
  }
  std::fprintf(stderr, "%s: refusal a client cannot act on: %s\n", what, s.ToString().c_str());
  std::abort();
}

}  // namespace crm::fuzz

// libFuzzer calls this once before the first input. Protobuf logs every string field of
// invalid UTF-8 it parses, which is most of what a fuzzer feeds it: silence it. (Each harness
// is one translation unit, so this header is included once per program.)
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

#endif  // CRM_FUZZ_FUZZ_INPUT_H_
