#ifndef CRM_LIBS_COMMON_TEMP_DIR_TESTING_H_
#define CRM_LIBS_COMMON_TEMP_DIR_TESTING_H_

// For tests only: folders of their own under the test's temporary directory.
#include <stdlib.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace crm {

// A new, empty folder `<TempDir>/<prefix>-XXXXXX` that no other process on the machine was
// given (mkdtemp). A process id is not enough: test runs in other pid namespaces share /tmp,
// and one of them removed a folder another was using (ServerTest, 2026-12-07). Aborts the test
// binary if the folder cannot be made, as nothing a test then does would mean anything.
inline std::string NewTestDir(absl::string_view prefix) {
  std::string templ = absl::StrCat(::testing::TempDir(), "/", prefix, "-XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) {
    ADD_FAILURE() << "cannot create a folder like " << templ;
    ::abort();
  }
  return templ;
}

}  // namespace crm

#endif  // CRM_LIBS_COMMON_TEMP_DIR_TESTING_H_
