#include "specialists/data/generator.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace agentstream::specialists::data {
namespace {

// xoshiro256** seeded by splitmix64: small, fast, and the same everywhere.
class Rng final {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& s : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n).
  int64_t Below(int64_t n) {
    return static_cast<int64_t>(Next() % static_cast<uint64_t>(n));
  }
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi) { return lo + Below(hi - lo + 1); }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Normal() {
    const double u1 = 1.0 - Unit();  // (0, 1]
    const double u2 = Unit();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

struct Party {
  std::string name;
  std::string category;
  std::string country;
};

int64_t Ts(int y, int m, int d, int hh, int mm, int ss) {
  return absl::ToUnixSeconds(absl::FromCivil(
      absl::CivilSecond(y, m, d, hh, mm, ss), absl::UTCTimeZone()));
}

const char* const kAdjectives[] = {
    "Northwind", "Blue",    "Golden",  "Silver",    "Green", "Summit", "Harbor",
    "Maple",     "Cedar",   "Pioneer", "Atlas",     "Union", "Bright", "Rapid",
    "Urban",     "Coastal", "Prime",   "Evergreen", "Metro", "Sunrise"};
const char* const kNouns[] = {
    "Foods",  "Market",  "Outfitters", "Pharmacy",    "Diner",
    "Fuel",   "Books",   "Cinema",     "Electronics", "Apparel",
    "Bakery", "Travel",  "Clinic",     "Hardware",    "Grill",
    "Coffee", "Telecom", "Energy",     "Fitness",     "Depot"};
const char* const kSuffixes[] = {"",      "Co",   "Inc",     "LLC",
                                 "Group", "Shop", "Express", "Plus"};
const char* const kCategories[] = {
    "groceries",     "restaurants", "fuel",      "utilities",
    "travel",        "electronics", "clothing",  "healthcare",
    "entertainment", "insurance",   "education", "home_improvement",
    "online_retail", "telecom"};
const char* const kBillCategories[] = {"utilities", "insurance", "telecom",
                                       "education"};

std::string WeightedMerchantCountry(Rng& rng) {
  static const std::pair<const char*, int> kWeights[] = {
      {"US", 80}, {"CA", 4}, {"GB", 4}, {"DE", 3}, {"FR", 2}, {"MX", 2},
      {"NL", 1},  {"ES", 1}, {"IT", 1}, {"JP", 1}, {"SG", 1}};
  int64_t r = rng.Below(100);
  for (const auto& [country, weight] : kWeights) {
    if (r < weight) return country;
    r -= weight;
  }
  return "US";
}

class Builder final {
 public:
  explicit Builder(const GeneratorOptions& options)
      : options_(options), rng_(options.seed) {
    MakeParties();
  }

  std::vector<Transaction> Build() {
    for (int a = 0; a < options_.accounts; ++a) Account(a);
    PlantPatterns();
    std::sort(rows_.begin(), rows_.end(),
              [](const Transaction& x, const Transaction& y) {
                return std::tie(x.ts, x.account, x.counterparty, x.amount_cents,
                                x.direction, x.channel) <
                       std::tie(y.ts, y.account, y.counterparty, y.amount_cents,
                                y.direction, y.channel);
              });
    for (size_t i = 0; i < rows_.size(); ++i) rows_[i].id = i + 1;
    return std::move(rows_);
  }

 private:
  void MakeParties() {
    for (int i = 0; i < 600; ++i) {
      std::string name =
          absl::StrCat(kAdjectives[i % 20], " ", kNouns[(i / 20) % 20]);
      if (const char* suffix = kSuffixes[(i / 20 + i / 400) % 8];
          *suffix != '\0') {
        absl::StrAppend(&name, " ", suffix);
      }
      absl::StrAppend(&name, " #", i);
      merchants_.push_back(
          {name, kCategories[rng_.Below(14)], WeightedMerchantCountry(rng_)});
    }
    static const char* const kWireCountries[] = {
        "US", "US", "US", "GB", "DE", "CH", "AE", "HK", "SG", "CN",
        "IN", "BR", "NG", "CA", "MX", "NL", "LU", "JP", "KY", "PA"};
    for (int i = 0; i < 120; ++i) {
      wire_parties_.push_back(
          {absl::StrCat(kAdjectives[i % 20], " ", kNouns[(i * 7) % 20],
                        " Holdings Ltd #", i),
           "transfer", kWireCountries[i % 20]});
    }
    static const char* const kRiskyNames[][2] = {
        {"Caspian Horizon Exports", "IR"}, {"Pyongyang Trade Link", "KP"},
        {"Mandalay Gem Brokers", "MM"},    {"Levant Supply House", "SY"},
        {"Aden Maritime Services", "YE"},  {"Kabul Freight Partners", "AF"}};
    for (const auto& [name, country] : kRiskyNames) {
      risky_parties_.push_back({name, "trading", country});
    }
    for (int i = 0; i < 80; ++i) {
      employers_.push_back({absl::StrCat(kAdjectives[(i * 3) % 20], " ",
                                         kNouns[i % 20], " Payroll #", i),
                            "payroll", "US"});
    }
    for (int i = 0; i < 150; ++i) {
      landlords_.push_back({absl::StrCat(kAdjectives[(i * 11) % 20],
                                         " Property Management #", i),
                            "rent", "US"});
    }
  }

  static std::string AccountName(int a) {
    return absl::StrCat("ACC-", 1000 + a);
  }
  static std::string Branch(int64_t n) {
    return absl::StrFormat("Cash - Branch %03d", n);
  }

  void Add(const std::string& account, int64_t ts, const Party& party,
           const char* channel, const char* direction, int64_t cents) {
    Transaction t;
    t.ts = ts;
    t.account = account;
    t.counterparty = party.name;
    t.category = party.category;
    t.country = party.country;
    t.channel = channel;
    t.direction = direction;
    t.amount_cents = std::max<int64_t>(cents, 1);
    rows_.push_back(std::move(t));
  }

  int64_t RandomTs() {
    return rng_.Between(kGeneratedStartTs, kGeneratedEndTs);
  }

  void Account(int a) {
    const std::string account = AccountName(a);
    const Party& employer = employers_[rng_.Below(employers_.size())];
    const Party& landlord = landlords_[rng_.Below(landlords_.size())];
    const int64_t salary = rng_.Between(250000, 900000);
    const int64_t rent = rng_.Between(80000, 300000);
    const int salary_day = static_cast<int>(rng_.Between(25, 28));
    const int rent_day = static_cast<int>(rng_.Between(1, 3));
    for (int m = 0; m < 24; ++m) {
      const int year = 2024 + (10 + m) / 12;
      const int month = (10 + m) % 12 + 1;
      Add(account,
          Ts(year, month, salary_day, static_cast<int>(rng_.Between(2, 6)),
             static_cast<int>(rng_.Below(60)), 0),
          employer, "ach", "credit", salary + rng_.Between(-2000, 2000));
      Add(account,
          Ts(year, month, rent_day, static_cast<int>(rng_.Between(7, 11)),
             static_cast<int>(rng_.Below(60)), 0),
          landlord, "ach", "debit", rent);
    }
    // Favourite merchants, Zipf-weighted.
    const int favourites = static_cast<int>(rng_.Between(8, 20));
    std::vector<const Party*> shops;
    double total_weight = 0;
    for (int i = 0; i < favourites; ++i) {
      shops.push_back(&merchants_[rng_.Below(merchants_.size())]);
      total_weight += 1.0 / (i + 1);
    }
    const int64_t cards = rng_.Between(110, 180);
    for (int64_t i = 0; i < cards; ++i) {
      double pick = rng_.Unit() * total_weight;
      size_t s = 0;
      while (s + 1 < shops.size() && pick > 1.0 / (s + 1)) {
        pick -= 1.0 / (s + 1);
        ++s;
      }
      const double dollars =
          std::min(5000.0, std::exp(std::log(45.0) + 0.8 * rng_.Normal()));
      Add(account, RandomTs(), *shops[s], "card", "debit",
          static_cast<int64_t>(dollars * 100));
    }
    const int64_t bills = rng_.Between(24, 48);
    for (int64_t i = 0; i < bills; ++i) {
      Party bill = merchants_[rng_.Below(merchants_.size())];
      bill.category = kBillCategories[rng_.Below(4)];
      Add(account, RandomTs(), bill, "ach", "debit", rng_.Between(3000, 40000));
    }
    const int64_t deposits = rng_.Below(10);
    for (int64_t i = 0; i < deposits; ++i) {
      Add(account, RandomTs(), {Branch(rng_.Between(1, 40)), "cash", "US"},
          "cash", "credit", rng_.Between(5000, 250000));
    }
    const int64_t withdrawals = rng_.Between(5, 24);
    for (int64_t i = 0; i < withdrawals; ++i) {
      Add(account, RandomTs(), {Branch(rng_.Between(1, 40)), "cash", "US"},
          "cash", "debit", rng_.Between(1, 40) * 2000);
    }
    const int64_t wires = rng_.Below(5);
    for (int64_t i = 0; i < wires; ++i) {
      const Party& party =
          rng_.Below(1000) < 15
              ? risky_parties_[rng_.Below(risky_parties_.size())]
              : wire_parties_[rng_.Below(wire_parties_.size())];
      Add(account, RandomTs(), party, "wire",
          rng_.Below(2) == 0 ? "credit" : "debit",
          rng_.Between(100000, 2000000));
    }
  }

  void PlantPatterns() {
    // ACC-1042: structuring, velocity, concentration, outlier.
    const std::string a1042 = "ACC-1042";
    const int64_t structuring[][3] = {{11, 10, 985000},
                                      {12, 15, 970000},
                                      {13, 9, 992000},
                                      {13, 16, 950000},
                                      {14, 11, 999000}};
    int branch = 3;
    for (const auto& [day, hour, cents] : structuring) {
      Add(a1042,
          Ts(2026, 8, static_cast<int>(day), static_cast<int>(hour), 14, 0),
          {Branch(branch), "cash", "US"}, "cash", "credit", cents);
      branch += 5;
    }
    for (int i = 0; i < 24; ++i) {
      Add(a1042, Ts(2026, 9, 17, 10, 0, 0) + i * 900 + rng_.Below(600),
          merchants_[rng_.Below(merchants_.size())], "card", "debit",
          rng_.Between(15000, 90000));
    }
    const Party orion{"Orion Global Trading FZE", "trading", "AE"};
    for (int i = 0; i < 30; ++i) {
      Add(a1042, Ts(2026, 5, 4, 11, 0, 0) + i * 5 * 86400 + rng_.Below(3600),
          orion, "wire", "debit", rng_.Between(1200000, 1800000));
    }
    Add(a1042, Ts(2026, 10, 5, 14, 22, 10), risky_parties_[0], "wire", "debit",
        24800000);

    // ACC-1337: structuring in June 2026.
    const int64_t s1337[][2] = {
        {8, 920000}, {9, 980000}, {11, 900000}, {13, 955000}};
    for (const auto& [day, cents] : s1337) {
      Add("ACC-1337", Ts(2026, 6, static_cast<int>(day), 12, 30, 0),
          {Branch(day), "cash", "US"}, "cash", "credit", cents);
    }
    // ACC-1500: 30 transactions in 5 hours on 2026-07-04.
    for (int i = 0; i < 30; ++i) {
      Add("ACC-1500", Ts(2026, 7, 4, 9, 0, 0) + i * 600,
          merchants_[rng_.Below(merchants_.size())], "card", "debit",
          rng_.Between(2000, 60000));
    }
    // ACC-1777: wires to high-risk jurisdictions, monthly.
    const int64_t w1777[][3] = {{5, 20, 3}, {6, 18, 1}, {7, 22, 2},
                                {8, 19, 4}, {9, 16, 3}, {10, 14, 0}};
    for (const auto& [month, day, party] : w1777) {
      Add("ACC-1777",
          Ts(2026, static_cast<int>(month), static_cast<int>(day), 15, 0, 0),
          risky_parties_[party], "wire", "debit",
          rng_.Between(750000, 2200000));
    }
    // ACC-1234: structuring in March 2025 (outside the last 6 months).
    const int64_t s1234[][2] = {
        {10, 910000}, {11, 990000}, {13, 940000}, {14, 960000}};
    for (const auto& [day, cents] : s1234) {
      Add("ACC-1234", Ts(2025, 3, static_cast<int>(day), 10, 0, 0),
          {Branch(day + 10), "cash", "US"}, "cash", "credit", cents);
    }
  }

  const GeneratorOptions options_;
  Rng rng_;
  std::vector<Party> merchants_;
  std::vector<Party> wire_parties_;
  std::vector<Party> risky_parties_;
  std::vector<Party> employers_;
  std::vector<Party> landlords_;
  std::vector<Transaction> rows_;
};

}  // namespace

std::vector<Transaction> GenerateTransactions(const GeneratorOptions& options) {
  return Builder(options).Build();
}

absl::Status GenerateDatabase(sqlite3* db, const GeneratorOptions& options) {
  if (absl::Status s = InsertTransactions(db, GenerateTransactions(options));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CreateIndexes(db); !s.ok()) return s;
  if (absl::Status s = SetMeta(db, "seed", absl::StrCat(options.seed));
      !s.ok()) {
    return s;
  }
  return SetMeta(db, "source", absl::StrCat("generated:seed=", options.seed));
}

}  // namespace agentstream::specialists::data
