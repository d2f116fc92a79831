// `explain`: the index split without tables (--mode 32|pae), the offset width of large
// pages, --features/--maxphyaddr/--implicit, several addresses per call (positionals or
// stdin), and logical addresses SELECTOR:OFFSET segmented through a GDT first.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/run_pagelab.hpp"

namespace pagelab::test {
namespace {

using nlohmann::json;

// One 1 GiB page (PDPTE with PS) mapping linear 0..1 GiB to physical 1..2 GiB.
const char* const OneGig = "mode 4\ncr3 0x1000\n0x1000 0x2003\n0x2000 0x40000083\n";

TEST(ExplainMore, IndexSplitWithoutTablesIn32BitAndPae) {
  // 32-bit paging: 10 + 10 + 12 bits (DESIGN.md: PGD 10 bits, PMD folded, PTE 10 bits).
  const auto r = run_pagelab({"explain", "--mode", "32", "0xc0001234", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = json::parse(r.out);
  ASSERT_EQ(j["breakdown"].size(), 2u);
  EXPECT_EQ(j["breakdown"][0]["index"], 0x300);  // bits 31:22 of 0xc0001234
  EXPECT_EQ(j["breakdown"][1]["index"], 1);      // bits 21:12
  EXPECT_EQ(j["offset"], "0x234");
  // PAE: 2 + 9 + 9 + 12.
  const auto p = json::parse(run_pagelab({"explain", "--mode", "pae", "0xc0001234", "--json"}).out);
  ASSERT_EQ(p["breakdown"].size(), 3u);
  EXPECT_EQ(p["breakdown"][0]["index"], 3);
  EXPECT_EQ(p["breakdown"][1]["index"], 0);
  EXPECT_EQ(p["breakdown"][2]["index"], 1);
}

TEST(ExplainMore, AOneGigPageHasThirtyOffsetBitsAndNeedsTheFeature) {
  const TempDir dir;
  const auto tables = dir.write("1g", OneGig);
  const auto r = run_pagelab({"explain", "0x12345678", "--tables", tables, "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = json::parse(r.out);
  EXPECT_EQ(j["outcome"]["page_size"], "1G");
  EXPECT_EQ(j["outcome"]["physical"], "0x52345678");  // 0x40000000 + 0x12345678
  EXPECT_EQ(j["offset_bits"], 30);
  EXPECT_EQ(j["offset"], "0x12345678");
  EXPECT_EQ(j["breakdown"].size(), 2u);  // PML4 and PDPT; no PD or PT index
  const auto t = run_pagelab({"explain", "0x12345678", "--tables", tables});
  EXPECT_TRUE(contains(t.out, "offset              bits 29:0")) << t.out;
  // Without 1 GiB pages (CPUID.80000001H:EDX.Page1GB=0) PS in a PDPTE is reserved: #PF
  // with P and RSVD (SDM 4.5.4).
  const auto no1g = json::parse(
      run_pagelab({"explain", "0x12345678", "--tables", tables, "--features", "pae,nx", "--json"})
          .out);
  EXPECT_EQ(no1g["outcome"]["kind"], "page-fault");
  EXPECT_EQ(no1g["outcome"]["error_code"], "0x9");
  EXPECT_EQ(run_pagelab({"explain", "1", "--features", "warp-drive"}).status, 2);
}

TEST(ExplainMore, MaxphyaddrAndImplicitAccesses) {
  const TempDir dir;
  // A 4 KiB page whose frame has bit 40 set: fine with MAXPHYADDR 46, reserved with 40.
  const auto tables = dir.write("t",
                                "mode 4\ncr3 0x1000\n0x1000 0x2007\n0x2000 0x3007\n"
                                "0x3000 0x4007\n0x4000 0x10000000007\n");
  const auto wide = json::parse(
      run_pagelab({"explain", "0", "--tables", tables, "--maxphyaddr", "46", "--json"}).out);
  EXPECT_EQ(wide["outcome"]["kind"], "ok");
  const auto narrow = json::parse(
      run_pagelab({"explain", "0", "--tables", tables, "--maxphyaddr", "40", "--json"}).out);
  EXPECT_EQ(narrow["outcome"]["error_code"], "0x9");  // P | RSVD
  // An implicit supervisor access of a user page: supervisor in the error code (U/S=0)
  // even with --user, and the access to the user page is allowed without SMAP.
  const auto impl = json::parse(run_pagelab({"explain", "0x1000", "--tables", tables, "--user",
                                             "--write", "--implicit", "--json"})
                                    .out);
  EXPECT_EQ(impl["outcome"]["kind"], "page-fault");  // nothing mapped at 0x1000
  EXPECT_EQ(impl["outcome"]["error_code"], "0x2");   // not present, W, supervisor
}

TEST(ExplainMore, SeveralAddressesPerCall) {
  const auto r = run_pagelab({"explain", "0x803FE7F5CE", "0x803FE00000", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::vector<json> docs;
  while (std::getline(in, line)) docs.push_back(json::parse(line));
  ASSERT_EQ(docs.size(), 2u);  // JSON Lines: one document per address
  EXPECT_EQ(docs[0]["outcome"]["physical"], "0xc5ce");
  EXPECT_EQ(docs[1]["schema"], "pagelab/1");
  // A bad address anywhere: nothing is explained.
  const auto bad = run_pagelab({"explain", "0x1000", "banana"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_EQ(bad.out, "");
}

TEST(ExplainMore, StdinOneAddressPerLine) {
  const TempDir dir;
  const auto input = dir.write("in", "# addresses\n0x803FE7F5CE\n\n0x803FE00000\n");
  const auto r = run_pagelab({"explain", "--json"}, RunSetup{{}, "", {}, input});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
}

TEST(ExplainMore, LogicalAddressThroughAFlatLinuxGdt) {
  // i386 Linux 2.4: 0x23 is __USER_CS, base 0, 4 GiB, DPL 3: linear = offset, then a
  // user fetch; the worked example maps nothing at 0x08048368 (PML4E[0] not present).
  const auto r = run_pagelab({"explain", "0x23:0x08048368", "--gdt", "linux32", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = json::parse(r.out);
  EXPECT_EQ(j["segmentation"]["linear"], "0x8048368");
  EXPECT_EQ(j["segmentation"]["register"], "CS");
  EXPECT_EQ(j["address"], "0x8048368");
  EXPECT_EQ(j["outcome"]["error_code"], "0x14");  // not present, U, I/D
  // The probe's GDT has a 16-bit data segment at index 4: not code, #GP(0x20).
  const auto p = json::parse(run_pagelab({"explain", "0x23:0x08048368", "--json"}).out);
  EXPECT_EQ(p["segmentation"]["fault"]["vector"], 13);
  EXPECT_EQ(p["segmentation"]["fault"]["error_code"], "0x20");
  // A limit: the offset past a 64 KiB segment is #GP(0).
  const auto lim = json::parse(run_pagelab({"explain", "0x8:0x10000", "--gdt",
                                            "0,0x00009a000000ffff", "--mode", "32", "--json"})
                                   .out);
  EXPECT_EQ(lim["segmentation"]["fault"]["error_code"], "0x0");
}

TEST(DecodeSelector, NamesLinuxLayouts) {
  const auto r = run_pagelab({"decode", "selector", "0x23"});
  EXPECT_TRUE(contains(r.out, "__USER_CS (i386 Linux 2.4)")) << r.out;
  EXPECT_TRUE(contains(r.out, "__USER32_CS (x86-64 Linux)")) << r.out;
  EXPECT_TRUE(
      contains(run_pagelab({"decode", "selector", "0x73"}).out, "__USER_CS (i386 Linux 2.6+)"));
  EXPECT_FALSE(contains(run_pagelab({"decode", "selector", "0x48"}).out, "Linux:"));
}

}  // namespace
}  // namespace pagelab::test
