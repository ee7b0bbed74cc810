#include "libs/server/logging.h"

#include "gtest/gtest.h"

namespace crm::server {
namespace {

TEST(MaskPiiTest, MasksMobileNumbersInEveryCommonForm) {
  EXPECT_EQ(MaskPii("phone 13812345678 ok"), "phone 138****5678 ok");
  EXPECT_EQ(MaskPii("+86 138 1234 5678"), "138****5678");
  EXPECT_EQ(MaskPii("tel:138-1234-5678"), "tel:138****5678");
}

TEST(MaskPiiTest, MasksEmails) {
  EXPECT_EQ(MaskPii("mail zhang.san@example.com now"), "mail z***@example.com now");
}

TEST(MaskPiiTest, LeavesOtherNumbersAlone) {
  EXPECT_EQ(MaskPii("order 123456 at version 12"), "order 123456 at version 12");
  EXPECT_EQ(MaskPii("id 0190f1c4-0000-7000"), "id 0190f1c4-0000-7000");
}

}  // namespace
}  // namespace crm::server
