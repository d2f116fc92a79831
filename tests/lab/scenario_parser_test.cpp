// The scenario language: what each statement parses to, and errors that name the file,
// line and column of the mistake.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::lab::scenario {
namespace {

using paging::Pte;

Location error_at(const std::string& text) {
  try {
    parse_scenario(text, "t.pgl");
  } catch (const ScenarioError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("t.pgl:", 0), 0u) << e.what();
    return e.where();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return {};
}

TEST(ScenarioParser, MapWithTargetLengthPageSizeAndFlags) {
  const auto s = parse_scenario("map 0x803F_E7F0_00 -> 0xC000 8k w u nx pk=3\n", "t.pgl");
  ASSERT_EQ(s.statements.size(), 1u);
  const auto& m = std::get<Map>(s.statements[0].action);
  EXPECT_EQ(m.va.value(), 0x803FE7F000u);
  EXPECT_EQ(m.pa.value(), 0xC000u);
  EXPECT_EQ(m.length, 8192u);
  EXPECT_EQ(m.page_size, paging::PageSize::Size4K);
  EXPECT_EQ(m.flags, Pte::Writable | Pte::User | Pte::NoExecute |
                         (std::uint64_t{3} << Pte::ProtectionKeyShift));
}

TEST(ScenarioParser, MapDefaultsToIdentityAndTakesHugePages) {
  const auto s = parse_scenario("map 0x200000 4m 2m\n", "t.pgl");
  const auto& m = std::get<Map>(s.statements[0].action);
  EXPECT_EQ(m.pa.value(), 0x200000u);
  EXPECT_EQ(m.length, 4u << 20);
  EXPECT_EQ(m.page_size, paging::PageSize::Size2M);
}

TEST(ScenarioParser, ExpectationsAttachToTheAccessBeforeThem) {
  const auto s = parse_scenario(
      "read 0xffff_ffff_ffff_f000 size 4 user\n"
      "expect pf err=0x5 cr2=0xffff_ffff_ffff_f000\n"
      "expect ad PML4 a=1\n"
      "write 0x1000 ac value 0x42\n"
      "expect ok\n",
      "t.pgl");
  ASSERT_EQ(s.statements.size(), 2u);
  const auto& r = std::get<AccessStep>(s.statements[0].action);
  EXPECT_EQ(r.access.address.value(), 0xffff'ffff'ffff'f000u);
  EXPECT_EQ(r.access.size, 4u);
  EXPECT_EQ(r.access.privilege, paging::Privilege::User);
  ASSERT_EQ(r.expects.size(), 2u);
  const auto& pf = std::get<ExpectPageFault>(r.expects[0].what);
  EXPECT_EQ(pf.error_code, 5u);
  EXPECT_EQ(*pf.cr2, 0xffff'ffff'ffff'f000u);
  EXPECT_EQ(r.expects[0].where.line, 2u);
  const auto& ad = std::get<ExpectAd>(r.expects[1].what);
  EXPECT_EQ(ad.level, 4u);
  EXPECT_TRUE(*ad.accessed);
  EXPECT_FALSE(ad.dirty.has_value());
  const auto& w = std::get<AccessStep>(s.statements[1].action);
  EXPECT_EQ(w.access.type, paging::AccessType::Write);
  EXPECT_TRUE(w.ac);
  EXPECT_EQ(w.write_value, 0x42u);
  EXPECT_EQ(w.access.size, 8u);  // the default
}

TEST(ScenarioParser, SetEntryFlagsValueAndWriter) {
  const auto s = parse_scenario(
      "set entry 0x4000_0000 PT +bit51 -w via host\n"
      "set entry 0x4000_0000 2 = 0x20_1003\n",
      "t.pgl");
  const auto& a = std::get<SetEntry>(s.statements[0].action);
  EXPECT_EQ(a.level, 1u);
  EXPECT_EQ(a.set, paging::bit(51));
  EXPECT_EQ(a.clear, Pte::Writable);
  EXPECT_EQ(a.writer, Writer::Host);
  const auto& b = std::get<SetEntry>(s.statements[1].action);
  EXPECT_EQ(b.level, 2u);
  EXPECT_EQ(*b.value, 0x201003u);
  EXPECT_EQ(b.writer, Writer::Probe);
}

TEST(ScenarioParser, ControlsValueListsTitleAndFeatures) {
  const auto s = parse_scenario(
      "# Title line\n"
      "mode 5level\n"
      "cr4 +smep -pge\n"
      "map 0 1g 1g\n"
      "read 0\n"
      "expect value 0x1|0x2 mask 0xff\n",
      "t.pgl");
  EXPECT_EQ(s.title, "Title line");
  EXPECT_EQ(std::get<SetMode>(s.statements[0].action).mode, paging::PagingMode::Level5);
  const auto& c = std::get<SetControl>(s.statements[1].action);
  EXPECT_EQ(c.set, paging::Cr4::Smep);
  EXPECT_EQ(c.clear, paging::Cr4::Pge);
  const auto& v =
      std::get<ExpectValue>(std::get<AccessStep>(s.statements[3].action).expects[0].what);
  EXPECT_EQ(v.values, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(v.mask, 0xffu);
  EXPECT_EQ(s.requires_features, (std::vector<std::string>{"1GB-pages", "LA57", "SMEP"}));
}

TEST(ScenarioParser, APresentPdpteWithPsWrittenRawNeedsOneGigabytePages) {
  // As `map ... 1g` does: the file's expectations hold where CPUID offers 1 GiB pages.
  const auto needs = [](const std::string& mode, unsigned level, std::uint64_t value) {
    const auto s = parse_scenario(
        fmt::format("mode {}\nset entry 0x8000800000 {} = {:#x}\nread 0x8000800000\n", mode, level,
                    value),
        "t.pgl");
    return std::find(s.requires_features.begin(), s.requires_features.end(), "1GB-pages") !=
           s.requires_features.end();
  };
  EXPECT_TRUE(needs("4level", 3, 0x81));
  EXPECT_TRUE(needs("5level", 3, 0x8000000000581087));
  EXPECT_FALSE(needs("4level", 3, 0x80));  // not present: no page at all
  EXPECT_FALSE(needs("4level", 3, 0x1));   // a PDPTE pointing at a PD
  EXPECT_FALSE(needs("4level", 2, 0x81));  // a 2 MiB page
}

TEST(ScenarioParser, ErrorsNameLineAndColumn) {
  auto at = [](const std::string& text, unsigned line, unsigned column) {
    const Location l = error_at(text);
    EXPECT_EQ(l.line, line) << text;
    EXPECT_EQ(l.column, column) << text;
  };
  at("frobnicate 1\n", 1, 1);                                    // unknown statement
  at("\n# c\nmap 0x40_0000 -> 0xZZ 4k\n", 3, 18);                // not a number
  at("map 0x1000 4k w  q\n", 1, 18);                             // unknown flag
  at("expect ok\n", 1, 1);                                       // expect without an access
  at("map 0x1000 4k\nmode pae\n", 2, 6);                         // mode after setup
  at("read 0x1000\nexpect pf 0x7\n", 2, 11);                     // err= missing
  at("read 0x1000 size 3\n", 1, 18);                             // not an access size
  at("set entry 0x1000 6 +w\n", 1, 18);                          // no level 6
  at("write 0x1000\nexpect value 1\n", 2, 8);                    // value needs a read
  at("read 0x1000\nexpect translate 0x2000 = 0x3000\n", 2, 18);  // not this access
  at("protect 0x1000 4k w\n", 1, 19);                            // protect needs a sign
  at("read 0x1000 user 7\n", 1, 18);                             // trailing garbage
  at("map 0x1000\n", 1, 11);                                     // length missing: end of line
  at("cpu arm\n", 1, 5);                                         // no such vendor
  at("map 0x1000 4k\ncpu amd\n", 2, 5);                          // cpu after setup
}

TEST(ScenarioParser, CpuStatesAVendorsRulesAndIsNoStatement) {
  EXPECT_EQ(parse_scenario("mode 4level\ncpu amd\nread 0\n", "t.pgl").rules, "amd");
  EXPECT_EQ(parse_scenario("cpu intel\n", "t.pgl").rules, "intel");
  const auto any = parse_scenario("map 0 4k\nread 0\n", "t.pgl");
  EXPECT_TRUE(any.rules.empty());
  EXPECT_EQ(parse_scenario("cpu amd\nread 0\n", "t.pgl").statements.size(), 1u);
}

TEST(ScenarioParser, UnreadableFileIsAnError) {
  EXPECT_THROW(load_scenario("/nonexistent/x.pgl"), ScenarioError);
}

TEST(ScenarioParser, HelpTextDocumentsEveryStatement) {
  const auto& help = scenario_help_text();
  for (const char* word : {"mode",      "cr0",          "cr4",          "efer",
                           "rflags",    "tables",       "table",        "map",
                           "unmap",     "protect",      "recursive",    "set entry",
                           "invlpg",    "flush",        "poke",         "read|write|fetch",
                           "expect pf", "expect ad",    "expect value", "expect translate",
                           "expect gp", "cpu amd|intel"}) {
    EXPECT_NE(help.find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace pagelab::lab::scenario
