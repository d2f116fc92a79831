// docs/json.md: every command's --json output, error paths included, follows schema
// "pagelab/1" (json_schema.hpp). The checker itself is tested first on documents that
// break each rule, so a checker that accepts anything fails here.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/json_schema.hpp"
#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"

namespace pagelab::test {
namespace {

using nlohmann::json;

// Runs `args`, expects `status`, and checks stdout against the schema for `command`.
json conforming(const std::vector<std::string>& args, int status, const std::string& command) {
  const auto r = run_pagelab(args);
  EXPECT_EQ(r.status, status) << r.out << r.err;
  const auto j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out << r.err;
  if (j.is_discarded()) return j;
  JsonSchemaChecker checker;
  EXPECT_EQ(checker.check(j, command), "") << r.out.substr(0, 4000);
  if (status != 0 && j.contains("error")) {
    EXPECT_EQ(j["error"]["exit_status"], status);
  }
  return j;
}

TEST(JsonSchema, TheCheckerRefusesEachBrokenRule) {
  JsonSchemaChecker c;
  const json good = {{"schema", "pagelab/1"}, {"command", "run"}, {"verdict", "passed"}};
  EXPECT_EQ(c.check(good, "run"), "");
  EXPECT_NE(c.check(good, "modes"), "");
  auto bad = good;
  bad["schema"] = "pagelab/0";
  EXPECT_NE(c.check(bad, "run"), "");
  bad = good;
  bad["verdict"] = "agreed";
  EXPECT_NE(c.check(bad, "run"), "");
  bad = good;
  bad["x"] = {{"address", 4096}};
  EXPECT_NE(c.check(bad, "run"), "");
  bad = good;
  bad["x"] = {{"address", "4096"}};
  EXPECT_NE(c.check(bad, "run"), "");
  bad = good;
  bad["big"] = 0x100000000ULL;  // precision lost in JavaScript above 2^53; hex above 2^32
  EXPECT_NE(c.check(bad, "run"), "");
  bad = good;
  bad["counts"] = {{"differ, both allowed", 1}};
  EXPECT_NE(c.check(bad, "run"), "");
  bad = good;
  bad["error"] = {{"message", "x"}};  // no exit_status
  EXPECT_NE(c.check(bad, "run"), "");
  bad = good;
  bad["outcome"] = {{"kind", "page-fault"}, {"error_code", "0x2"}};  // no vector
  EXPECT_NE(c.check(bad, "run"), "");
}

TEST(JsonSchema, ExplainAndDecode) {
  const auto j = conforming({"explain", "0x803FE7F5CE", "--json"}, 0, "explain");
  EXPECT_EQ(j["address"], "0x803fe7f5ce");
  EXPECT_EQ(j["outcome"]["physical"], "0xc5ce");  // the worked example of DESIGN.md
  conforming({"explain", "banana", "--json"}, 2, "explain");
  const auto pte =
      conforming({"decode", "pte", "0x8000000000200003", "--mode", "4", "--level", "1", "--json"},
                 0, "decode");
  EXPECT_EQ(pte["value"], "0x8000000000200003");
  const auto d = conforming({"decode", "descriptor", "0x00cffa000000ffff", "--json"}, 0, "decode");
  EXPECT_EQ(d["limit"], "0xfffff");  // base 0, limit 0xfffff, DPL 3 (DESIGN.md)
  conforming({"decode", "selector", "0x23", "--json"}, 0, "decode");
  conforming({"decode", "cr0", "0x80000011", "--json"}, 0, "decode");
  conforming({"decode", "cr4", "0x20", "--json"}, 0, "decode");
  conforming({"decode", "efer", "0x500", "--json"}, 0, "decode");
  conforming({"decode", "cr0", "banana", "--json"}, 2, "decode");
}

TEST(JsonSchema, RunWithTheOracle) {
  auto args = example_files();
  args.insert(args.begin(), {"run", "--oracle-only", "--json"});
  const auto j = conforming(args, 0, "run");
  EXPECT_EQ(j["files"], example_files().size());
  EXPECT_EQ(j["counts"]["failed"], 0);
  const TempDir dir;
  // An expectation the architecture does not allow: a failed case, exit 1.
  const auto wrong = dir.write("wrong.pgl",
                               "map 0x4000_0000 -> 0x20_0000 4k w\n"
                               "poke 0x20_0000 0x1111\n"
                               "read 0x4000_0000\n"
                               "expect value 0x2222\n");
  const auto f = conforming({"run", "--oracle-only", "--json", wrong}, 1, "run");
  const auto& access = f["scenarios"][0]["accesses"][0];
  EXPECT_EQ(access["verdict"], "failed");
  EXPECT_EQ(access["allowed"][0]["kind"], "ok");
  EXPECT_EQ(access["allowed"][0]["value"], "0x1111");
  EXPECT_EQ(access["allowed"][0]["physical"], "0x200000");
  // Bad input: a directory, a file that does not exist, an empty file.
  conforming({"run", "--oracle-only", "--json", dir.path().string()}, 2, "run");
  conforming({"run", "--oracle-only", "--json", (dir.path() / "none.pgl").string()}, 2, "run");
  conforming({"run", "--oracle-only", "--json", dir.write("empty.pgl", "")}, 2, "run");
}

class JsonSchemaQemu : public QemuTest {};

TEST_F(JsonSchemaQemu, RunOnQemuAndOnEveryBackend) {
  const auto one =
      conforming({"run", "--backend", "qemu", "--json", example("nx_fetch.pgl")}, 0, "run");
  EXPECT_EQ(one["backend"], "qemu-tcg");
  const auto all =
      conforming({"run", "--backend", "all", "--json", example("nx_fetch.pgl")}, 0, "run");
  EXPECT_EQ(all["backend"], "all");
  const auto& c = all["scenarios"][0]["cases"][0];
  EXPECT_EQ(c["backends"]["qemu-tcg"]["observed"]["kind"], "page-fault");  // NX fetch: #PF
  EXPECT_EQ(c["backends"]["qemu-tcg"]["observed"]["vector"], 14);
  EXPECT_EQ(c["backends"]["qemu-tcg"]["observed"]["error_code"], "0x11");  // P | I/D
}

TEST_F(JsonSchemaQemu, ModesInfoBenchCrash) {
  const auto m = conforming(
      {"modes", "--backend", "qemu", "--quiet", "--json", "--case", "long64:CR4.PGE 0->1"}, 0,
      "modes");
  ASSERT_EQ(m["cases"].size(), 1u);
  EXPECT_EQ(m["cases"][0]["verdict"], "passed");  // SDM 4.10.2.4: PGE may be toggled
  conforming({"modes", "--backend", "qemu", "--json", "--case", "nowhere:x"}, 2, "modes");
  conforming({"info", "--backend", "qemu", "--no-probe", "--json"}, 0, "info");
  conforming({"bench", "--backend", "qemu", "--batch", "64", "--rounds", "1", "--json"}, 0,
             "bench");
  conforming({"bench", "--batch", "5000", "--json"}, 2, "bench");
  const auto crash =
      conforming({"crash", "insn", "--backend", "qemu", "--bytes", "0f0b", "--json"}, 3, "crash");
  EXPECT_EQ(crash["vector"], 6);  // UD2 raises #UD
  conforming({"crash", "triple-fault", "--backend", "qemu", "--json"}, 3, "crash");
}

TEST_F(JsonSchemaQemu, Tour) {
  const auto t = conforming({"tour", "--backend", "qemu", "--json"}, 0, "tour");
  for (const auto& s : t["stops"])
    EXPECT_EQ(s["verdict"], "passed") << s.dump();  // TCG enters every mode
}

}  // namespace
}  // namespace pagelab::test
