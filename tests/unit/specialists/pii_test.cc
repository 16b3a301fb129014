// The PII detector: true and false positives, Luhn, IBAN mod-97, masking.
#include "specialists/compliance_expert/pii.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::specialists {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Types(const std::string& text) {
  std::vector<std::string> out;
  for (const PiiFinding& f : FindPii(text)) out.push_back(f.type);
  return out;
}

TEST(LuhnTest, ValidAndInvalidNumbers) {
  EXPECT_TRUE(LuhnValid("4111111111111111"));
  EXPECT_TRUE(LuhnValid("4111 1111 1111 1111"));
  EXPECT_TRUE(LuhnValid("5500-0000-0000-0004"));
  EXPECT_TRUE(LuhnValid("378282246310005"));  // Amex, 15 digits.
  EXPECT_TRUE(LuhnValid("79927398713"));
  EXPECT_FALSE(LuhnValid("4111111111111112"));
  EXPECT_FALSE(LuhnValid("1234567812345678"));
  EXPECT_FALSE(LuhnValid("7"));
}

TEST(IbanTest, Mod97Check) {
  EXPECT_TRUE(IbanValid("DE89370400440532013000"));
  EXPECT_TRUE(IbanValid("GB82 WEST 1234 5698 7654 32"));
  EXPECT_TRUE(IbanValid("fr1420041010050500013m02606"));
  EXPECT_FALSE(IbanValid("DE89370400440532013001"));
  EXPECT_FALSE(IbanValid("GB82WEST1234569876543"));  // One digit short.
  EXPECT_FALSE(IbanValid("DE89"));
}

TEST(PiiTest, FindsEachKind) {
  EXPECT_EQ(Types("mail john.doe+aml@example.co.uk now"),
            std::vector<std::string>{"email"});
  EXPECT_EQ(Types("card 4111 1111 1111 1111."),
            std::vector<std::string>{"card_number"});
  EXPECT_EQ(Types("card 4111-1111-1111-1111"),
            std::vector<std::string>{"card_number"});
  EXPECT_EQ(Types("amex 3782 822463 10005"),
            std::vector<std::string>{"card_number"});
  EXPECT_EQ(Types("pay to DE89 3704 0044 0532 0130 00 today"),
            std::vector<std::string>{"iban"});
  EXPECT_EQ(Types("pay to GB82WEST12345698765432"),
            std::vector<std::string>{"iban"});
  EXPECT_EQ(Types("call +1 415 555 0100"), std::vector<std::string>{"phone"});
  EXPECT_EQ(Types("call (415) 555-0100"), std::vector<std::string>{"phone"});
  EXPECT_EQ(Types("call +44 20 7946 0958"), std::vector<std::string>{"phone"});
  EXPECT_EQ(Types("a@b.io, 4111111111111111 and DE89370400440532013000"),
            (std::vector<std::string>{"email", "card_number", "iban"}));
}

TEST(PiiTest, LeavesOrdinaryNumbersAlone) {
  for (const char* text : {
           "Assess ACC-1042 over the last 6 months",
           "deposits of 9,500.00 on 2026-08-11",
           "order 1234 5678 9012 3456 failed Luhn",  // Not a card.
           "invoice 4111111111111112",               // Luhn fails.
           "DE89370400440532013001 is not an IBAN",  // Check fails.
           "version 1.2.3, 2026-01-01T10:00:00Z, 10000 USD",
           "user@localhost has no domain", "ticket #123456789",
           "amounts 10000 20000 30002",  // Luhn-valid, not grouped like a card.
           "ids 12345 67890 12345",      // Nor like a phone.
       }) {
    EXPECT_TRUE(FindPii(text).empty()) << text;
  }
}

TEST(PiiTest, MasksEverythingFound) {
  const std::string text =
      "Customer jane.roe@example.com, card 4111 1111 1111 1111, IBAN "
      "DE89 3704 0044 0532 0130 00, phone +1 415 555 0100, account ACC-1042.";
  const std::string masked = MaskPii(text);
  EXPECT_THAT(masked, Not(HasSubstr("jane.roe")));
  EXPECT_THAT(masked, HasSubstr("j***@example.com"));
  EXPECT_THAT(masked, HasSubstr("**** **** **** 1111"));
  EXPECT_THAT(masked, Not(HasSubstr("4111")));
  EXPECT_THAT(masked, HasSubstr("DE89 **** **** **** **** 3000"));
  EXPECT_THAT(masked, Not(HasSubstr("0532")));
  EXPECT_THAT(masked, HasSubstr("+***-***-0100"));
  EXPECT_THAT(masked, Not(HasSubstr("415")));
  EXPECT_THAT(masked, HasSubstr("account ACC-1042."));
  EXPECT_EQ(MaskPii("nothing here"), "nothing here");
}

}  // namespace
}  // namespace agentstream::specialists
