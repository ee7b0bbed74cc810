#include "services/tickets/business_calendar.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/grpc_status.h"

namespace crm::tickets {
namespace {

const std::vector<std::pair<int, int>> kNone;

int WeekdayIndex(absl::CivilDay d) {
  switch (absl::GetWeekday(d)) {
    case absl::Weekday::monday: return 0;
    case absl::Weekday::tuesday: return 1;
    case absl::Weekday::wednesday: return 2;
    case absl::Weekday::thursday: return 3;
    case absl::Weekday::friday: return 4;
    case absl::Weekday::saturday: return 5;
    case absl::Weekday::sunday: return 6;
  }
  return 0;
}

bool ParseDay(const std::string& text, absl::CivilDay* day) {
  return text.size() == 10 && absl::ParseCivilTime(text, day) && absl::FormatCivilTime(*day) == text;
}

}  // namespace

absl::StatusOr<BusinessCalendar> BusinessCalendar::Make(const v1::BusinessCalendar& c, const std::string& prefix) {
  BusinessCalendar cal;
  auto field = [&](const std::string& part) { return absl::StrCat(prefix, ".", part); };
  for (int i = 0; i < c.windows_size(); ++i) {
    const auto& w = c.windows(i);
    const std::string at = absl::StrCat("windows[", i, "]");
    if (w.weekday() < 1 || w.weekday() > 7) return InvalidFieldError(field(at + ".weekday"), "must be 1 (Monday) to 7");
    if (w.start_minute() < 0 || w.end_minute() > 1440 || w.start_minute() >= w.end_minute()) {
      return InvalidFieldError(field(at + ".end_minute"), "a window is start < end within 0-1440 minutes");
    }
    cal.windows_[w.weekday() - 1].push_back({w.start_minute(), w.end_minute()});
  }
  for (auto& day : cal.windows_) {
    std::sort(day.begin(), day.end());
    for (size_t k = 1; k < day.size(); ++k) {
      if (day[k].first < day[k - 1].second) return InvalidFieldError(field("windows"), "windows of a day overlap");
    }
  }
  for (const auto* list : {&c.holidays(), &c.workdays()}) {
    const bool holidays = list == &c.holidays();
    for (int i = 0; i < list->size(); ++i) {
      absl::CivilDay d;
      const std::string at = absl::StrCat(holidays ? "holidays[" : "workdays[", i, "]");
      if (!ParseDay((*list)[i], &d)) return InvalidFieldError(field(at), "is not a yyyy-MM-dd date");
      auto& into = holidays ? cal.holidays_ : cal.workdays_;
      if (!into.insert(d).second) return InvalidFieldError(field(at), "appears twice");
      if (!holidays && cal.holidays_.count(d)) return InvalidFieldError(field(at), "is a holiday too");
    }
  }
  const int offset = c.utc_offset_minutes() == 0 ? 480 : c.utc_offset_minutes();
  if (offset < -14 * 60 || offset > 14 * 60) {
    return InvalidFieldError(field("utc_offset_minutes"), "must be within ±840 minutes");
  }
  cal.zone_ = absl::FixedTimeZone(offset * 60);
  return cal;
}

BusinessCalendar BusinessCalendar::AlwaysOpen() {
  BusinessCalendar cal;
  for (auto& day : cal.windows_) day = {{0, 1440}};
  return cal;
}

const std::vector<std::pair<int, int>>& BusinessCalendar::WindowsOn(absl::CivilDay day) const {
  if (holidays_.count(day)) return kNone;
  if (workdays_.count(day)) return windows_[0];
  return windows_[WeekdayIndex(day)];
}

absl::Duration BusinessCalendar::Between(absl::Time from, absl::Time to) const {
  absl::Duration total;
  if (to <= from) return total;
  const absl::CivilDay last = absl::ToCivilDay(to, zone_);
  for (absl::CivilDay day = absl::ToCivilDay(from, zone_); day <= last; ++day) {
    const absl::Time midnight = absl::FromCivil(day, zone_);
    for (const auto& [start, end] : WindowsOn(day)) {
      const absl::Time a = std::max(from, midnight + absl::Minutes(start));
      const absl::Time b = std::min(to, midnight + absl::Minutes(end));
      if (b > a) total += b - a;
    }
  }
  return total;
}

absl::Time BusinessCalendar::Add(absl::Time from, absl::Duration d) const {
  absl::Duration left = d;
  if (left <= absl::ZeroDuration()) return from;
  const absl::CivilDay first = absl::ToCivilDay(from, zone_);
  for (absl::CivilDay day = first; day < first + 3653; ++day) {
    const absl::Time midnight = absl::FromCivil(day, zone_);
    for (const auto& [start, end] : WindowsOn(day)) {
      const absl::Time a = std::max(from, midnight + absl::Minutes(start));
      const absl::Time b = midnight + absl::Minutes(end);
      if (b <= a) continue;
      if (b - a >= left) return a + left;
      left -= b - a;
    }
  }
  return absl::InfiniteFuture();
}

}  // namespace crm::tickets
