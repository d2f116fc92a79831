// The scenario language: Linux level names in the file's mode (PGD is the top level,
// folded levels refused), and warnings for legal statements that are probably not meant.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/run_pagelab.hpp"

namespace pagelab::test {
namespace {

// A supervisor read of a mapped page, then `expect ad LEVEL a=1`: the architecture sets
// A in every entry the walk used (SDM 4.8), except that PAE's PDPTEs have no A bit.
std::string read_then_ad(const std::string& mode, const std::string& level) {
  return "mode " + mode + "\nmap 0x4000_0000 4k w\nread 0x4000_0000\nexpect ad " + level + " a=1\n";
}

int run_text(const std::string& text, std::string* err = nullptr) {
  const TempDir dir;
  const auto r = run_pagelab({"run", "--oracle-only", dir.write("t.pgl", text)});
  if (err != nullptr) *err = r.err;
  return r.status;
}

TEST(ScenarioLanguage, LinuxNamesFollowTheMode) {
  for (const char* mode : {"4level", "5level", "32bit"}) {
    EXPECT_EQ(run_text(read_then_ad(mode, "PGD")), 0) << mode;
    EXPECT_EQ(run_text(read_then_ad(mode, "PTE")), 0) << mode;
  }
  // In PAE the PGD is the PDPT, loaded at MOV CR3, with no A bit: a scenario bug.
  EXPECT_EQ(run_text(read_then_ad("pae", "PGD")), 1);
  EXPECT_EQ(run_text(read_then_ad("pae", "PMD")), 0);  // the PD
  EXPECT_EQ(run_text(read_then_ad("5level", "P4D")), 0);
  EXPECT_EQ(run_text(read_then_ad("4level", "PUD")), 0);
  // Folded levels are refused, naming the mode.
  std::string err;
  EXPECT_EQ(run_text(read_then_ad("4level", "P4D"), &err), 2);
  EXPECT_TRUE(contains(err, "P4D is folded in 4-level paging")) << err;
  EXPECT_EQ(run_text(read_then_ad("32bit", "PMD"), &err), 2);
  EXPECT_EQ(run_text(read_then_ad("pae", "PUD"), &err), 2);
  // The same name at another level means another entry: PGD in 32-bit paging is the PD,
  // whose entry a `set entry ... PGD = 0` clears: the read then faults, not present.
  EXPECT_EQ(run_text("mode 32bit\nmap 0x4000_0000 4k w\nset entry 0x4000_0000 PGD = 0\n"
                     "read 0x4000_0000\nexpect pf err=0x0\n"),
            0);
}

TEST(ScenarioLanguage, WarningsForLargeLenAndTheTablePool) {
  std::string err;
  EXPECT_EQ(run_text("map 0x4000_0000 2m w\nread 0x4000_0000\n", &err), 0);
  EXPECT_TRUE(contains(err,
                       "t.pgl:1:5: warning: map: LEN 0x200000 is a large-page size, but no "
                       "page size was given: this maps 512 4 KiB pages"))
      << err;
  EXPECT_EQ(run_text("map 0x4000_0000 2m 2m w\nread 0x4000_0000\n", &err), 0);
  EXPECT_EQ(err, "");
  EXPECT_EQ(run_text("map 0x4000_0000 2m 4k w\nread 0x4000_0000\n", &err), 0);
  EXPECT_EQ(err, "");  // 4 KiB pages, said explicitly
  EXPECT_EQ(run_text("map 0x4000_0000 -> 0x30_0000 4k w\nread 0x4000_0000\n", &err), 0);
  EXPECT_TRUE(contains(err, "overlaps the page-table pool at [0x300000, 0x400000)")) << err;
  EXPECT_EQ(run_text("map 0x4000_0000 -> 0x40_1000 4k w\nread 0x4000_0000\n", &err), 0);
  EXPECT_TRUE(contains(err, "[0x400000, 0x600000) the CPU runs use")) << err;
  // The JSON keeps them.
  const TempDir dir;
  const auto r = run_pagelab({"run", "--oracle-only", "--json",
                              dir.write("w.pgl", "map 0x4000_0000 2m w\nread 0x4000_0000\n")});
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["scenarios"][0]["warnings"].size(), 1u) << r.out;
}

TEST(ScenarioLanguage, PokeMustBeAligned) {
  std::string err;
  EXPECT_EQ(run_text("map 0x4000_0000 4k w\npoke 0x20_0004 1\nread 0x4000_0000\n", &err), 2);
  EXPECT_TRUE(contains(err, "8-byte aligned")) << err;
}

}  // namespace
}  // namespace pagelab::test
