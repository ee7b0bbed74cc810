// What masking costs per log line (MaskPii runs on every line a server logs):
//   build/libs/server/crm-logging-bench
#include <string>

#include "benchmark/benchmark.h"
#include "libs/server/logging.h"

namespace crm::server {
namespace {

// A typical line: a warning naming a customer, with a phone number and an e-mail address.
void BM_MaskTypicalLine(benchmark::State& state) {
  const std::string line =
      "customers: rejected CreateCustomer for u1 (team east): phone +86 138 1234 5678 already belongs to "
      "customers/0190f1c4-0000-7000-8000-000000000001, e-mail zhang.san@example.com, request 7f3a";
  for (auto _ : state) benchmark::DoNotOptimize(MaskPii(line));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * line.size()));
}
BENCHMARK(BM_MaskTypicalLine);

// A line with nothing to mask, in Chinese and ASCII.
void BM_MaskCleanLine(benchmark::State& state) {
  const std::string line =
      "tasks: scheduler run at 2026-12-06T10:00:00Z: 3 reminders, 1 overdue notice, 0 rules fired "
      "(任务提醒 3 条，逾期 1 条), took 1.2ms";
  for (auto _ : state) benchmark::DoNotOptimize(MaskPii(line));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * line.size()));
}
BENCHMARK(BM_MaskCleanLine);

// 1 MB lines of what made std::regex recurse and overflow: one long local part, a run of
// at signs, digits and separators, Chinese text with full-width numbers.
void BM_MaskMegabyteLine(benchmark::State& state) {
  std::string line;
  switch (state.range(0)) {
    case 0: line = std::string(1 << 20, 'a') + "@example.com"; break;
    case 1: while (line.size() < (1 << 20)) line += "a@"; break;
    case 2: while (line.size() < (1 << 20)) line += "1 3-8."; break;
    default: while (line.size() < (1 << 20)) line += "客户电话１３８１２３４５６７８，邮箱用户@例子.中国。"; break;
  }
  for (auto _ : state) benchmark::DoNotOptimize(MaskPii(line));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * line.size()));
}
BENCHMARK(BM_MaskMegabyteLine)->DenseRange(0, 3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace crm::server

BENCHMARK_MAIN();
