#include "services/tickets/sla.h"

#include <algorithm>

namespace crm::tickets {
namespace {

// A span of the ticket's life in which the clock runs or not.
struct Span {
  absl::Time from, to;
  bool running;
};

// The spans from creation to `end` (the stop, or now).
std::vector<Span> Spans(const TicketTimeline& t, absl::Time end) {
  std::vector<Span> out;
  for (size_t i = 0; i < t.steps.size(); ++i) {
    const absl::Time from = std::max(t.steps[i].at, t.created);
    const absl::Time to = std::min(i + 1 < t.steps.size() ? t.steps[i + 1].at : end, end);
    if (from >= end) break;
    if (to > from) out.push_back({from, to, !t.steps[i].pauses && !t.steps[i].final});
  }
  return out;
}

// One clock: counts running business time from creation to `stop` (or `now`).
SlaClock Clock(const TicketTimeline& t, absl::Duration target, int warning_percent, const BusinessCalendar& cal,
               std::optional<absl::Time> stop, absl::Time now) {
  SlaClock c;
  c.has_target = target > absl::ZeroDuration();
  c.target = target;
  c.stopped = stop.has_value() && *stop <= now;
  const absl::Time end = c.stopped ? *stop : now;
  const absl::Duration warn = target * warning_percent / 100;
  for (const Span& s : Spans(t, end)) {
    if (!s.running) continue;
    const absl::Duration part = cal.Between(s.from, s.to);
    if (c.has_target && warning_percent > 0 && c.warn_at == absl::InfiniteFuture() && c.elapsed + part >= warn) {
      c.warn_at = cal.Add(s.from, warn - c.elapsed);
    }
    if (c.has_target && !c.breached && c.elapsed + part >= target) {
      c.breached = true;
      c.breached_at = cal.Add(s.from, target - c.elapsed);
    }
    c.elapsed += part;
  }
  if (c.stopped) return c;
  // Running now? The last step before now decides.
  const TicketTimeline::Step* current = nullptr;
  for (const auto& s : t.steps) {
    if (s.at <= now) current = &s;
  }
  c.paused = current == nullptr || current->pauses || current->final;
  if (!c.paused && c.has_target && !c.breached) c.due = cal.Add(now, target - c.elapsed);
  return c;
}

}  // namespace

SlaStatus EvaluateSla(const TicketTimeline& t, const SlaTargets& targets, const BusinessCalendar& calendar,
                      absl::Time now) {
  // Resolved when the ticket is in a final state now (a reopened ticket's clock runs again;
  // the time it spent resolved does not count).
  std::optional<absl::Time> resolved, first_final;
  for (const auto& s : t.steps) {
    if (s.at > now) break;
    resolved = s.final ? std::optional<absl::Time>(s.at) : std::nullopt;
    if (s.final && !first_final) first_final = s.at;
  }
  SlaStatus out;
  // Resolving answers the customer too: the first-response clock stops then at the latest.
  std::optional<absl::Time> responded = t.first_response;
  if (first_final && (!responded || *first_final < *responded)) responded = first_final;
  out.first_response = Clock(t, targets.first_response, targets.warning_percent, calendar, responded, now);
  out.resolution = Clock(t, targets.resolution, targets.warning_percent, calendar, resolved, now);
  return out;
}

}  // namespace crm::tickets
