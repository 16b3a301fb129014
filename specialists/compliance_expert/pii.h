// Finds personal data in free text and masks it, so that nothing the
// ComplianceExpert echoes (thinking, results) repeats it:
//   email        local@domain.tld          -> j***@example.com
//   card_number  13-19 digits, in one block or grouped as cards are
//                (4-4-4-4..., 4-6-5, 4-6-4; spaces or dashes), that pass
//                the Luhn check            -> **** **** **** 1111
//   iban         2 letters, 2 check digits, 11-30 letters/digits (spaces
//                allowed every 4) that pass the ISO 13616 mod-97 check
//                                           -> DE89 **** **** **** 3000
//   phone        a leading '+' and 8-15 digits, or 10-12 digits written with
//                separators ("(555) 123-4567", "555-123-4567"), in groups
//                of at most 4 digits when grouped
//                                           -> ***-***-4567 (last 4 kept)
// Digit runs that are none of these (order numbers, amounts, dates, account
// ids like ACC-1042) are left alone. Pure functions, thread-safe.
#ifndef AGENTSTREAM_SPECIALISTS_COMPLIANCE_EXPERT_PII_H_
#define AGENTSTREAM_SPECIALISTS_COMPLIANCE_EXPERT_PII_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace agentstream::specialists {

struct PiiFinding {
  std::string type;  // "email", "card_number", "iban", "phone".
  size_t begin = 0;  // Byte offsets in the scanned text.
  size_t end = 0;
  std::string masked;  // The replacement written by MaskPii().
};

std::vector<PiiFinding> FindPii(std::string_view text);
// `text` with every finding replaced by its masked form.
std::string MaskPii(std::string_view text);
std::string MaskPii(std::string_view text,
                    const std::vector<PiiFinding>& findings);

// Luhn check over the digits of `digits` (non-digits ignored); false for
// fewer than 2 digits.
bool LuhnValid(std::string_view digits);
// ISO 13616 check: country letters, check digits, BBAN; spaces ignored.
bool IbanValid(std::string_view iban);

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_COMPLIANCE_EXPERT_PII_H_
