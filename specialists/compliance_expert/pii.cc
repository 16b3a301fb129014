#include "specialists/compliance_expert/pii.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace agentstream::specialists {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsAlnum(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c));
}
bool IsEmailLocal(char c) {
  return IsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool IsDomain(char c) { return IsAlnum(c) || c == '.' || c == '-'; }

bool Overlaps(const std::vector<PiiFinding>& found, size_t b, size_t e) {
  for (const PiiFinding& f : found) {
    if (b < f.end && f.begin < e) return true;
  }
  return false;
}

std::string Digits(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (IsDigit(c)) out.push_back(c);
  }
  return out;
}

void FindEmails(std::string_view t, std::vector<PiiFinding>* out) {
  for (size_t at = t.find('@'); at != std::string_view::npos;
       at = t.find('@', at + 1)) {
    size_t b = at;
    while (b > 0 && IsEmailLocal(t[b - 1])) --b;
    size_t e = at + 1;
    while (e < t.size() && IsDomain(t[e])) ++e;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) --e;
    while (b < at && t[b] == '.') ++b;
    if (b == at || e == at + 1) continue;
    const std::string_view domain = t.substr(at + 1, e - at - 1);
    const size_t dot = domain.rfind('.');
    if (dot == std::string_view::npos || dot == 0 ||
        domain.size() - dot - 1 < 2) {
      continue;
    }
    bool tld_alpha = true;
    for (char c : domain.substr(dot + 1)) {
      tld_alpha =
          tld_alpha && absl::ascii_isalpha(static_cast<unsigned char>(c));
    }
    if (!tld_alpha) continue;
    out->push_back({"email", b, e,
                    absl::StrCat(std::string(t.substr(b, 1)), "***@",
                                 std::string(domain))});
  }
}

void FindIbans(std::string_view t, std::vector<PiiFinding>* out) {
  for (size_t i = 0; i + 4 <= t.size(); ++i) {
    if (i > 0 && IsAlnum(t[i - 1])) continue;
    if (!IsUpper(t[i]) || !IsUpper(t[i + 1]) || !IsDigit(t[i + 2]) ||
        !IsDigit(t[i + 3])) {
      continue;
    }
    // Extend over letters/digits, allowing single spaces between groups.
    std::string compact(t.substr(i, 4));
    size_t e = i + 4;
    size_t best_end = 0;
    std::string best;
    while (e < t.size()) {
      if (IsAlnum(t[e])) {
        compact.push_back(
            absl::ascii_toupper(static_cast<unsigned char>(t[e])));
        ++e;
      } else if (t[e] == ' ' && e + 1 < t.size() && IsAlnum(t[e + 1])) {
        ++e;
        continue;
      } else {
        break;
      }
      if (compact.size() > 34) break;
      const bool boundary = e >= t.size() || !IsAlnum(t[e]);
      if (boundary && compact.size() >= 15 && IbanValid(compact)) {
        best_end = e;
        best = compact;
      }
    }
    if (best_end == 0) continue;
    std::string masked = best.substr(0, 4);
    for (size_t k = 4; k + 4 < best.size(); k += 4)
      absl::StrAppend(&masked, " ****");
    absl::StrAppend(&masked, " ", best.substr(best.size() - 4));
    out->push_back({"iban", i, best_end, masked});
    i = best_end;
  }
}

// Lengths of the digit groups of a run ("4111 1111" -> {4, 4}).
std::vector<size_t> DigitGroups(std::string_view run) {
  std::vector<size_t> groups;
  size_t n = 0;
  for (char c : run) {
    if (IsDigit(c)) {
      ++n;
    } else if (n > 0) {
      groups.push_back(n);
      n = 0;
    }
  }
  if (n > 0) groups.push_back(n);
  if (groups.empty()) groups.push_back(0);
  return groups;
}

// How card numbers are written: one block, groups of 4 (the last 1-4), or
// the 4-6-5 / 4-6-4 of Amex and Diners. Amounts separated by spaces are not.
bool CardGrouping(const std::vector<size_t>& groups) {
  if (groups.size() == 1) return true;
  if (groups.size() == 3 && groups[0] == 4 && groups[1] == 6 &&
      (groups[2] == 5 || groups[2] == 4)) {
    return true;
  }
  for (size_t k = 0; k + 1 < groups.size(); ++k) {
    if (groups[k] != 4) return false;
  }
  return groups.back() >= 1 && groups.back() <= 4;
}

// Runs of digits with single separators (space, dash, dot, parentheses).
void FindNumbers(std::string_view t, std::vector<PiiFinding>* out) {
  size_t i = 0;
  while (i < t.size()) {
    const bool plus = t[i] == '+' && i + 1 < t.size() && IsDigit(t[i + 1]);
    const bool paren = t[i] == '(' && i + 1 < t.size() && IsDigit(t[i + 1]);
    if (!IsDigit(t[i]) && !plus && !paren) {
      ++i;
      continue;
    }
    // A number glued to letters (ACC-1042, x123) is an identifier.
    if (i > 0 && (IsAlnum(t[i - 1]) || t[i - 1] == '-')) {
      while (i < t.size() && (IsAlnum(t[i]) || t[i] == '-')) ++i;
      continue;
    }
    size_t b = i;
    size_t e = i + 1;
    bool separators = paren;
    bool only_space_dash = !paren;
    while (e < t.size()) {
      if (IsDigit(t[e])) {
        ++e;
      } else if ((t[e] == ' ' || t[e] == '-' || t[e] == '.' || t[e] == ')' ||
                  t[e] == '(') &&
                 e + 1 < t.size() &&
                 (IsDigit(t[e + 1]) ||
                  (t[e] == ')' && t[e + 1] == ' ' && e + 2 < t.size() &&
                   IsDigit(t[e + 2])))) {
        separators = true;
        if (t[e] != ' ' && t[e] != '-') only_space_dash = false;
        e += (t[e] == ')' && t[e + 1] == ' ') ? 2 : 1;
      } else {
        break;
      }
    }
    i = e;
    if (e < t.size() && IsAlnum(t[e])) continue;  // Glued to letters.
    const std::string digits = Digits(t.substr(b, e - b));
    if (Overlaps(*out, b, e)) continue;
    const std::vector<size_t> groups = DigitGroups(t.substr(b, e - b));
    if (digits.size() >= 13 && digits.size() <= 19 && only_space_dash &&
        !plus && CardGrouping(groups) && LuhnValid(digits)) {
      std::string masked;
      for (size_t k = 0; k + 4 < digits.size(); k += 4) masked += "**** ";
      absl::StrAppend(&masked, digits.substr(digits.size() - 4));
      out->push_back({"card_number", b, e, masked});
      continue;
    }
    const size_t longest_group =
        *std::max_element(groups.begin(), groups.end());
    const bool phone = (plus && digits.size() >= 8 && digits.size() <= 15 &&
                        (groups.size() == 1 || longest_group <= 4)) ||
                       (separators && digits.size() >= 10 &&
                        digits.size() <= 12 && longest_group <= 4);
    if (phone) {
      out->push_back({"phone", b, e,
                      absl::StrCat(plus ? "+" : "", "***-***-",
                                   digits.substr(digits.size() - 4))});
    }
  }
}

}  // namespace

bool LuhnValid(std::string_view text) {
  const std::string digits = Digits(text);
  if (digits.size() < 2) return false;
  int sum = 0;
  bool twice = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

bool IbanValid(std::string_view text) {
  std::string iban;
  for (char c : text) {
    if (c == ' ') continue;
    if (!IsAlnum(c)) return false;
    iban.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  if (iban.size() < 15 || iban.size() > 34 || !IsUpper(iban[0]) ||
      !IsUpper(iban[1]) || !IsDigit(iban[2]) || !IsDigit(iban[3])) {
    return false;
  }
  const std::string rearranged = iban.substr(4) + iban.substr(0, 4);
  int remainder = 0;
  for (char c : rearranged) {
    if (IsDigit(c)) {
      remainder = (remainder * 10 + (c - '0')) % 97;
    } else {
      const int v = c - 'A' + 10;
      remainder = (remainder * 100 + v) % 97;
    }
  }
  return remainder == 1;
}

std::vector<PiiFinding> FindPii(std::string_view text) {
  std::vector<PiiFinding> found;
  FindEmails(text, &found);
  std::vector<PiiFinding> ibans;
  FindIbans(text, &ibans);
  for (PiiFinding& f : ibans) {
    if (!Overlaps(found, f.begin, f.end)) found.push_back(std::move(f));
  }
  FindNumbers(text, &found);
  std::sort(found.begin(), found.end(),
            [](const PiiFinding& a, const PiiFinding& b) {
              return a.begin < b.begin;
            });
  return found;
}

std::string MaskPii(std::string_view text,
                    const std::vector<PiiFinding>& findings) {
  std::string out;
  size_t pos = 0;
  for (const PiiFinding& f : findings) {
    if (f.begin < pos) continue;
    out.append(text.substr(pos, f.begin - pos));
    out.append(f.masked);
    pos = f.end;
  }
  out.append(text.substr(pos));
  return out;
}

std::string MaskPii(std::string_view text) {
  return MaskPii(text, FindPii(text));
}

}  // namespace agentstream::specialists
