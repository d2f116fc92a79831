// `pagelab decode descriptor|selector|cr0|cr4|efer`, run as the real binary. Expected
// values come from the SDM layouts (figures 2-7, 3-6, 3-8) and DESIGN.md's facts.
#include <gtest/gtest.h>

#include "cli/run_pagelab.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using Result = pagelab::test::ProcessResult;

Result pagelab(std::vector<std::string> args) {
  return pagelab::test::run_pagelab(std::move(args));
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(DecodeCli, DescriptorDesignFact) {
  const Result r = pagelab({"decode", "descriptor", "0x00cffa000000ffff"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(has(r.out, "DPL         3")) << r.out;
  EXPECT_TRUE(has(r.out, "0xfffff")) << r.out;
  EXPECT_TRUE(has(r.out, "4 KiB granularity")) << r.out;
  EXPECT_TRUE(has(r.out, "4 GiB")) << r.out;
  EXPECT_TRUE(has(r.out, "execute/read")) << r.out;
  EXPECT_TRUE(has(r.out, "32-bit")) << r.out;
  EXPECT_TRUE(has(r.out, "present")) << r.out;
}

TEST(DecodeCli, DescriptorJsonParses) {
  const Result r = pagelab({"decode", "descriptor", "0x00cffa000000ffff", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("dpl"), 3);
  EXPECT_EQ(j.at("base"), "0x0");  // 64-bit values are hex strings (docs/json.md)
  EXPECT_EQ(j.at("limit"), "0xfffff");
  EXPECT_EQ(j.at("effective_limit"), "0xffffffff");
  EXPECT_EQ(j.at("g"), true);
  EXPECT_EQ(j.at("db"), true);
  EXPECT_EQ(j.at("present"), true);
  EXPECT_EQ(j.at("kind"), "code");
}

TEST(DecodeCli, SixteenByteTssWithHigh) {
  const Result r =
      pagelab({"decode", "descriptor", "0x1200893456780067", "--high", "0xffff8880", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("base"), "0xffff888012345678");
  EXPECT_EQ(j.at("type_name"), "64-bit TSS (available)");
}

TEST(DecodeCli, HighOnACodeDescriptorIsUsageError) {
  const Result r = pagelab({"decode", "descriptor", "0x00cffa000000ffff", "--high", "1"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
}

TEST(DecodeCli, Selector) {
  const Result r = pagelab({"decode", "selector", "0x1b"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(has(r.out, "index 3")) << r.out;
  EXPECT_TRUE(has(r.out, "TI 0 (GDT)")) << r.out;
  EXPECT_TRUE(has(r.out, "RPL 3")) << r.out;
}

TEST(DecodeCli, SelectorJson) {
  const Result r = pagelab({"decode", "selector", "0x0f", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("index"), 1);
  EXPECT_EQ(j.at("ti"), 1);
  EXPECT_EQ(j.at("table"), "LDT");
  EXPECT_EQ(j.at("rpl"), 3);
}

TEST(DecodeCli, SelectorWiderThan16BitsExits2) {
  const Result r = pagelab({"decode", "selector", "0x10000"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(DecodeCli, Cr0NamesPeEtPg) {
  const Result r = pagelab({"decode", "cr0", "0x80000011"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(has(r.out, " PE ")) << r.out;
  EXPECT_TRUE(has(r.out, " ET ")) << r.out;
  EXPECT_TRUE(has(r.out, " PG ")) << r.out;
  EXPECT_FALSE(has(r.out, " WP ")) << r.out;
  EXPECT_FALSE(has(r.out, "RESERVED")) << r.out;
}

TEST(DecodeCli, Cr0MalformedNumberExits2WithOneLine) {
  const Result r = pagelab({"decode", "cr0", "banana"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_TRUE(has(r.err, "banana")) << r.err;
}

TEST(DecodeCli, Cr4ReservedBitIsFlagged) {
  // CR4 bit 15 is reserved (SDM figure 2-7).
  const Result r = pagelab({"decode", "cr4", "0x8020", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.at("reserved_bits_set").size(), 1u);
  EXPECT_EQ(j.at("reserved_bits_set")[0], 15);
  EXPECT_EQ(j.at("bits")[0].at("name"), "PAE");
}

TEST(DecodeCli, AllThreeRegistersNameTheMode) {
  // PE|PG, PAE, LME|LMA: IA-32e mode with 4-level paging (SDM 4.1.1 table 4-1).
  const Result ia32e = pagelab({"decode", "efer", "0x500", "--cr0", "0x80000011", "--cr4", "0x20"});
  ASSERT_EQ(ia32e.status, 0) << ia32e.err;
  EXPECT_TRUE(has(ia32e.out, "4-level")) << ia32e.out;
  // PE|PG, PAE, LME=0: PAE paging.
  const Result pae = pagelab({"decode", "cr4", "0x20", "--cr0", "0x80000011", "--efer", "0"});
  ASSERT_EQ(pae.status, 0) << pae.err;
  EXPECT_TRUE(has(pae.out, "PAE paging")) << pae.out;
  // PE|PG, PAE=0, LME=0: 32-bit paging.
  const Result p32 = pagelab({"decode", "cr0", "0x80000011", "--cr4", "0", "--efer", "0"});
  ASSERT_EQ(p32.status, 0) << p32.err;
  EXPECT_TRUE(has(p32.out, "32-bit paging")) << p32.out;
}

TEST(DecodeCli, EferJsonParses) {
  const Result r = pagelab({"decode", "efer", "0xd01", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("register"), "EFER");
  EXPECT_EQ(j.at("bits").size(), 4u);  // SCE, LME, LMA, NXE
  EXPECT_TRUE(j.at("reserved_bits_set").empty());
}

TEST(DecodeCli, DecodeNeedsASubcommand) {
  const Result r = pagelab({"decode"});
  EXPECT_EQ(r.status, 2);
}

}  // namespace
