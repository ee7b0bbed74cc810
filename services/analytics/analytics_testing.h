#ifndef CRM_SERVICES_ANALYTICS_ANALYTICS_TESTING_H_
#define CRM_SERVICES_ANALYTICS_ANALYTICS_TESTING_H_

// What the analytics tests share (tests only): read models built from the log cut at a moment.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rebuild.h"

namespace crm::analytics::testing {

// A fresh projection at `path` of `topic` through `fold`, holding only what was recorded by
// `cut`: the reference a report as_of `cut` must equal.
inline std::unique_ptr<projection::ProjectionDb> BuildCut(eventlog::Log& log, const std::string& topic,
                                                          projection::RecordFold fold, absl::Time cut,
                                                          const std::string& path) {
  projection::ProjectionSpec spec;
  spec.version = 1;
  spec.sources.push_back({.topic = topic, .owned = false, .partitions = 0,
                          .apply = [fold, cut](projection::ProjectionDb* db) -> projection::ProjectionDb::ApplyFn {
                            return [db, fold, cut](const eventlog::Record& r, projection::Batch& b) -> absl::Status {
                              auto e = eventlog::DecodeEnvelope(r.value);
                              if (!e.ok()) return e.status();
                              if (projection::RecordedAt(*e) > cut) return absl::OkStatus();
                              return fold(*db, r, b);
                            };
                          }});
  auto n = projection::Rebuild(log, spec, path);
  EXPECT_TRUE(n.ok()) << n.status();
  return *projection::ProjectionDb::Open({.path = path});
}

// A fresh projection at `path` of every source of `spec`, holding only what was recorded by
// `cut`.
inline std::unique_ptr<projection::ProjectionDb> BuildCut(eventlog::Log& log, projection::ProjectionSpec spec,
                                                          absl::Time cut, const std::string& path) {
  for (projection::Source& source : spec.sources) {
    source.apply = [inner = source.apply, cut](projection::ProjectionDb* db) -> projection::ProjectionDb::ApplyFn {
      return [fn = inner(db), cut](const eventlog::Record& r, projection::Batch& b) -> absl::Status {
        auto e = eventlog::DecodeEnvelope(r.value);
        if (!e.ok()) return e.status();
        if (projection::RecordedAt(*e) > cut) return absl::OkStatus();
        return fn(r, b);
      };
    };
  }
  auto n = projection::Rebuild(log, spec, path);
  EXPECT_TRUE(n.ok()) << n.status();
  return *projection::ProjectionDb::Open({.path = path});
}

}  // namespace crm::analytics::testing

#endif  // CRM_SERVICES_ANALYTICS_ANALYTICS_TESTING_H_
