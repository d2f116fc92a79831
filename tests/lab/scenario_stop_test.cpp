// A machine that stops (triple fault, hang, QEMU exited) runs nothing more: the access
// it stopped on fails with the stop and where it happened, the rest of the scenario is
// skipped at once (no further access reaches the machine, so no watchdog per access),
// and the scenario does not pass.
#include <gtest/gtest.h>

#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::test {
namespace {

namespace sc = lab::scenario;

class StoppingMachine : public sc::Machine {
 public:
  explicit StoppingMachine(bool stop_at_start) : stop_at_start_(stop_at_start) {}
  [[nodiscard]] std::string name() const override { return "stopping"; }
  [[nodiscard]] paging::CpuFeatures features() const override { return sc::full_features(); }
  std::optional<std::string> precheck(const sc::Scenario&) override { return std::nullopt; }
  std::optional<std::string> start(const sc::Scenario&, sc::ScenarioModel&) override {
    if (!stop_at_start_) return std::nullopt;
    stopped_ = "QEMU exited (signal 9)";
    return "the platform could not start: " + *stopped_;
  }
  std::optional<std::string> apply(const sc::Statement&, const sc::ScenarioModel&) override {
    return std::nullopt;
  }
  void queue(const sc::AccessStep&, const sc::ScenarioModel&) override { ++queued_; }
  std::vector<std::variant<sc::Observation, std::string>> flush(const sc::ScenarioModel&,
                                                                bool) override {
    accesses += queued_;
    std::vector<std::variant<sc::Observation, std::string>> out(
        queued_, std::string("the guest stopped: triple fault (SHUTDOWN)"));
    queued_ = 0;
    stopped_ = "the guest stopped: triple fault (SHUTDOWN)";
    return out;
  }
  [[nodiscard]] std::optional<std::string> stopped() const override { return stopped_; }

  int accesses = 0;

 private:
  bool stop_at_start_;
  int queued_ = 0;
  std::optional<std::string> stopped_;
};

const char* const ThreeReads =
    "map 0x4000_0000 4k w\n"
    "read 0x4000_0000\n"
    "read 0x4000_0000\n"
    "read 0x4000_0000\n"
    "expect ok\n";

TEST(ScenarioStop, TheRestIsSkippedAtOnceAndTheScenarioFails) {
  const auto s = sc::parse_scenario(ThreeReads, "stop.pgl");
  StoppingMachine m(false);
  const auto r = sc::run_scenario(s, &m);
  EXPECT_EQ(m.accesses, 1);  // nothing after the stop reached the machine
  ASSERT_EQ(r.accesses.size(), 3u);
  EXPECT_EQ(r.accesses[0].verdict, sc::Verdict::Failed);
  EXPECT_EQ(r.accesses[0].reason, "the guest stopped: triple fault (SHUTDOWN) during stop.pgl:2");
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(r.accesses[i].verdict, sc::Verdict::Skipped);
    EXPECT_EQ(r.accesses[i].reason, r.accesses[0].reason);
  }
  EXPECT_EQ(r.verdict, sc::Verdict::Failed);
  EXPECT_EQ(r.reason, r.accesses[0].reason);
}

TEST(ScenarioStop, AMachineThatStoppedBeforeTheFirstAccessIsNoPass) {
  const auto s = sc::parse_scenario(ThreeReads, "stop.pgl");
  StoppingMachine m(true);
  const auto r = sc::run_scenario(s, &m);
  EXPECT_EQ(m.accesses, 0);
  EXPECT_EQ(r.verdict, sc::Verdict::Failed);
  EXPECT_EQ(r.accesses[0].reason, "QEMU exited (signal 9) during stop.pgl:2");
}

TEST(ScenarioStop, TheModelRefusingAStatementNamesItsLine) {
  // The PD entry sends the walk to 32 MiB, outside the model's guest RAM.
  const auto s = sc::parse_scenario(
      "map 0x4000_0000 4k w\nset entry 0x4000_0000 PD = 0x2000007\nread 0x4000_0000\n", "ram.pgl");
  try {
    (void)sc::run_scenario(s, nullptr);
    FAIL() << "no error";
  } catch (const sc::ScenarioError& e) {
    EXPECT_EQ(e.where().file, "ram.pgl");
    EXPECT_GE(e.where().line, 2u);
  }
}

}  // namespace
}  // namespace pagelab::test
