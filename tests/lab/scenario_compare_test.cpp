// Three-way checking and known access deviations: a departure from the architecture
// that the list names is reported as known and passes; the same departure without the
// entry fails; backends that differ inside the allowed set are not a failure. The
// backends themselves are replaced by a scripted machine, so this runs everywhere; the
// last tests run the shipped examples on every backend available here.
#include <gtest/gtest.h>

#include <filesystem>

#include "pagelab/lab/scenario/scenario_compare.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::test {
namespace {

namespace sc = lab::scenario;
using paging::PfError;

// Reads at 0x4000_0000 after bit 51 was set in the PTE: the architecture says #PF with
// P | RSVD (SDM 4.7).
const char* const ReservedBit =
    "# reserved bit\n"
    "map 0x4000_0000 -> 0x20_0000 4k w\n"
    "set entry 0x4000_0000 PT +bit51\n"
    "read 0x4000_0000\n"
    "expect pf err=0x9\n";

// One read of a page whose PTE changed without invalidation: old or new value allowed.
const char* const Stale =
    "# stale\n"
    "map 0x4000_0000 -> 0x20_0000 4k w\n"
    "poke 0x20_0000 0x1111\n"
    "poke 0x20_1000 0x2222\n"
    "read 0x4000_0000\n"
    "set entry 0x4000_0000 PT = 0x20_1003\n"
    "read 0x4000_0000\n"
    "expect value 0x1111|0x2222\n";

// A machine that answers every access with a scripted observation (in order).
class ScriptedMachine : public sc::Machine {
 public:
  ScriptedMachine(std::string name, std::vector<sc::Observation> script)
      : name_(std::move(name)), script_(std::move(script)) {}
  [[nodiscard]] std::string name() const override { return name_; }
  [[nodiscard]] paging::CpuFeatures features() const override { return sc::full_features(); }
  std::optional<std::string> precheck(const sc::Scenario&) override { return std::nullopt; }
  std::optional<std::string> start(const sc::Scenario&, sc::ScenarioModel&) override {
    return std::nullopt;
  }
  std::optional<std::string> apply(const sc::Statement&, const sc::ScenarioModel&) override {
    return std::nullopt;
  }
  void queue(const sc::AccessStep&, const sc::ScenarioModel&) override { ++queued_; }
  std::vector<std::variant<sc::Observation, std::string>> flush(const sc::ScenarioModel&,
                                                                bool) override {
    std::vector<std::variant<sc::Observation, std::string>> out;
    for (; queued_ > 0; --queued_) {
      if (next_ >= script_.size()) {
        out.emplace_back(std::string("script exhausted"));
      } else {
        out.emplace_back(script_[next_++]);
      }
    }
    return out;
  }

 private:
  std::string name_;
  std::vector<sc::Observation> script_;
  std::size_t next_ = 0, queued_ = 0;
};

sc::Observation page_fault(std::uint32_t error_code, std::uint64_t cr2, bool agrees,
                           std::optional<std::string> deviation = std::nullopt) {
  sc::Observation o;
  o.kind = sc::Observation::Kind::PageFault;
  o.vector = 14;
  o.error_code = error_code;
  o.cr2 = cr2;
  o.agrees = agrees;
  o.deviation = std::move(deviation);
  if (!agrees) o.report = "scripted disagreement";
  return o;
}

sc::Observation read_ok(std::uint64_t value) {
  sc::Observation o;
  o.value = value;
  return o;
}

sc::ScenarioResult run(
    const char* text, const std::string& backend, std::vector<sc::Observation> script,
    const std::vector<lab::AccessDeviation>& known = lab::known_access_deviations()) {
  const auto s = sc::parse_scenario(text, "test.pgl");
  ScriptedMachine m(backend, std::move(script));
  return sc::run_scenario(s, &m, known);
}

sc::ScenarioResult oracle(const char* text) {
  return sc::run_scenario(sc::parse_scenario(text, "test.pgl"), nullptr);
}

constexpr std::uint64_t Va = 0x40000000;
const std::string TcgId = "tcg-reserved-bit-error-code-without-p";

TEST(ScenarioCompare, NamedDeviationInTheListIsKnownAndPasses) {
  const auto r =
      run(ReservedBit, "qemu-tcg", {page_fault(PfError::Rsvd, Va, /*agrees=*/false, TcgId)});
  ASSERT_EQ(r.accesses.size(), 1u);
  EXPECT_EQ(r.accesses[0].verdict, sc::Verdict::Skipped);
  EXPECT_EQ(r.accesses[0].deviation, TcgId);
  EXPECT_NE(r.verdict, sc::Verdict::Failed);
  EXPECT_EQ(r.known_deviations(), 1u);
  // One line by default (name, where, the command for the details); the details with -v.
  const auto brief = sc::format_report(r, false);
  EXPECT_NE(brief.find("known deviation " + TcgId + "; details: pagelab run test.pgl:"),
            std::string::npos)
      << brief;
  EXPECT_EQ(brief.find("known platform deviation"), std::string::npos) << brief;
  EXPECT_NE(sc::format_report(r, true).find("known platform deviation " + TcgId),
            std::string::npos);

  const auto cmp = sc::compare_results(oracle(ReservedBit), {r});
  ASSERT_EQ(cmp.cases.size(), 1u);
  EXPECT_EQ(cmp.cases[0].classification, sc::CaseClass::KnownDeviation) << cmp.cases[0].detail;
  EXPECT_EQ(cmp.overall(), sc::CaseClass::KnownDeviation);
  EXPECT_NE(sc::format_comparison(cmp, false).find(TcgId), std::string::npos);
}

TEST(ScenarioCompare, SameDeviationWithoutTheListEntryFails) {
  const std::vector<lab::AccessDeviation> none;
  const auto r =
      run(ReservedBit, "qemu-tcg", {page_fault(PfError::Rsvd, Va, /*agrees=*/false, TcgId)}, none);
  EXPECT_EQ(r.accesses[0].verdict, sc::Verdict::Failed);
  EXPECT_TRUE(r.accesses[0].deviation.empty());
  EXPECT_NE(r.accesses[0].reason.find("not in the list"), std::string::npos)
      << r.accesses[0].reason;
  const auto cmp = sc::compare_results(oracle(ReservedBit), {r});
  EXPECT_EQ(cmp.cases[0].classification, sc::CaseClass::Failed);
}

TEST(ScenarioCompare, UnnamedDisagreementFailsLoudly) {
  // 0x1 (P, no RSVD) is no fault the architecture allows here, and nothing names it.
  const auto r = run(ReservedBit, "kvm", {page_fault(PfError::P, Va, /*agrees=*/false)});
  EXPECT_EQ(r.accesses[0].verdict, sc::Verdict::Failed);
  EXPECT_TRUE(r.accesses[0].disagrees);
  const auto ok = run(ReservedBit, "qemu-tcg", {page_fault(PfError::P | PfError::Rsvd, Va, true)});
  const auto cmp = sc::compare_results(oracle(ReservedBit), {r, ok});
  EXPECT_EQ(cmp.cases[0].classification, sc::CaseClass::Failed);
  EXPECT_NE(cmp.cases[0].detail.find("kvm departs from the architecture"), std::string::npos)
      << cmp.cases[0].detail;
  EXPECT_NE(sc::format_comparison(cmp, false).find("FAIL"), std::string::npos);
}

TEST(ScenarioCompare, BackendsThatDifferInsideTheAllowedSetAreNotAFailure) {
  const auto fresh = run(Stale, "kvm", {read_ok(0x1111), read_ok(0x2222)});
  const auto stale = run(Stale, "qemu-tcg", {read_ok(0x1111), read_ok(0x1111)});
  ASSERT_NE(fresh.verdict, sc::Verdict::Failed) << sc::format_report(fresh, true);
  ASSERT_NE(stale.verdict, sc::Verdict::Failed) << sc::format_report(stale, true);
  const auto cmp = sc::compare_results(oracle(Stale), {fresh, stale});
  ASSERT_EQ(cmp.cases.size(), 2u);
  EXPECT_EQ(cmp.cases[0].classification, sc::CaseClass::Agree);
  EXPECT_EQ(cmp.cases[1].classification, sc::CaseClass::DifferAllowed) << cmp.cases[1].detail;
  EXPECT_EQ(cmp.overall(), sc::CaseClass::DifferAllowed);
  const auto j = cmp.to_json();
  // Both inside the allowed set: passed, and the agreement field says they differ.
  EXPECT_EQ(j["cases"][1]["verdict"], "passed");
  EXPECT_EQ(j["cases"][1]["agreement"], "differ-allowed");
  EXPECT_EQ(j["cases"][1]["backends"]["kvm"]["observed"]["value"], "0x2222");
  EXPECT_EQ(j["cases"][1]["backends"]["kvm"]["observed"]["text"], "ok value 0x2222");
  EXPECT_EQ(j["cases"][1]["backends"]["qemu-tcg"]["observed"]["value"], "0x1111");
}

TEST(ScenarioCompare, ScenarioBugFailsWhateverTheBackendsDo) {
  const char* const Bug =
      "map 0x4000_0000 -> 0x20_0000 4k w\n"
      "read 0x4000_0000\n"
      "expect gp\n";
  const auto cmp = sc::compare_results(oracle(Bug), {});
  ASSERT_EQ(cmp.cases.size(), 1u);
  EXPECT_EQ(cmp.cases[0].classification, sc::CaseClass::Failed);
}

TEST(ScenarioCompare, NoBackendMeansSkippedWithTheReason) {
  const auto cmp = sc::compare_results(oracle(Stale), {});
  EXPECT_EQ(cmp.overall(), sc::CaseClass::Skipped);
  EXPECT_FALSE(cmp.cases[0].detail.empty());
}

// The catalogue entry itself: it recognises exactly a reserved-bit fault reported
// without P, on TCG.
TEST(AccessDeviations, TcgReservedBitEntryMatchesOnlyItsCase) {
  lab::OpAccess access;
  access.address = paging::Linear(Va);
  lab::OpResult observed;
  observed.status = lab::ProbeStatus::Fault;
  observed.vector = 14;
  observed.error_code = PfError::Rsvd;
  observed.cr2 = Va;
  std::vector<paging::Outcome> allowed = {
      paging::PageFault{PfError::P | PfError::Rsvd, paging::Linear(Va), {}}};
  const auto& list = lab::known_access_deviations();

  const auto* d =
      lab::find_access_deviation({{"tcg"}, access, observed, allowed, false, {}, {}, {}}, list);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->id, TcgId);
  EXPECT_FALSE(d->rule.empty());
  EXPECT_FALSE(d->reproducer.empty());
  // Not on another platform, and not without the entry.
  EXPECT_EQ(
      lab::find_access_deviation(
          {{"kvm", "pvm", "kvm-shadow-mmu"}, access, observed, allowed, false, {}, {}, {}}, list),
      nullptr);
  EXPECT_EQ(lab::find_access_deviation({{"tcg"}, access, observed, allowed, false, {}, {}, {}}, {}),
            nullptr);
  // Not for another error code, another CR2, or a fault that is not a reserved-bit one.
  observed.error_code = PfError::Rsvd | PfError::W;
  EXPECT_EQ(
      lab::find_access_deviation({{"tcg"}, access, observed, allowed, false, {}, {}, {}}, list),
      nullptr);
  observed.error_code = PfError::Rsvd;
  observed.cr2 = Va + 8;
  EXPECT_EQ(
      lab::find_access_deviation({{"tcg"}, access, observed, allowed, false, {}, {}, {}}, list),
      nullptr);
  observed.cr2 = Va;
  observed.error_code = 0;
  allowed = {paging::PageFault{PfError::P, paging::Linear(Va), {}}};
  EXPECT_EQ(
      lab::find_access_deviation({{"tcg"}, access, observed, allowed, false, {}, {}, {}}, list),
      nullptr);
}

// KVM's shadow MMU acting on a stale EFER.NXE: recognised only where a walk with NXE
// set gives what was observed, NXE is clear now, and the platform has a shadow MMU.
TEST(AccessDeviations, ShadowMmuStaleNxeNeedsTheKeyTheClearBitAndTheMatchingWalk) {
  using paging::Efer;
  lab::OpAccess access;
  access.address = paging::Linear(0x4000'0000);
  lab::OpResult observed;  // ok: the access went through
  const std::vector<paging::Outcome> allowed = {
      paging::PageFault{PfError::P | PfError::Rsvd, paging::Linear(0x4000'0000), {}}};
  paging::CpuState state;
  state.cr0 = paging::Cr0::Pg | paging::Cr0::Pe;
  state.cr4 = paging::Cr4::Pae;
  state.efer = Efer::Lme | Efer::Lma;  // NXE clear
  std::vector<std::uint64_t> asked;
  const auto with_nxe = [&](const paging::CpuState& s) {
    asked.push_back(s.efer);
    return (s.efer & Efer::Nxe) != 0;
  };
  const std::vector<std::string> shadow{"kvm", "kvm_amd", "kvm-shadow-mmu"};
  const auto& list = lab::known_access_deviations();
  const auto* d = lab::find_access_deviation(
      {shadow, access, observed, allowed, false, state, with_nxe, {}}, list);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->id, "shadow-mmu-xd-kept-after-nxe-clear");
  ASSERT_FALSE(asked.empty());
  EXPECT_NE(asked.back() & Efer::Nxe, 0u);
  // Not on KVM with EPT/NPT, not when NXE is set, not when the old walk differs too.
  EXPECT_EQ(lab::find_access_deviation(
                {{"kvm", "kvm_amd"}, access, observed, allowed, false, state, with_nxe, {}}, list),
            nullptr);
  auto nxe = state;
  nxe.efer |= Efer::Nxe;
  EXPECT_EQ(lab::find_access_deviation(
                {shadow, access, observed, allowed, false, nxe, with_nxe, {}}, list),
            nullptr);
  const auto never = [](const paging::CpuState&) { return false; };
  EXPECT_EQ(lab::find_access_deviation({shadow, access, observed, allowed, false, state, never, {}},
                                       list),
            nullptr);
}

TEST(AccessDeviations, IdsAreUniqueAndEveryEntryIsComplete) {
  const auto& list = lab::known_access_deviations();
  for (std::size_t i = 0; i < list.size(); ++i) {
    EXPECT_FALSE(list[i].rule.empty()) << list[i].id;
    EXPECT_FALSE(list[i].description.empty()) << list[i].id;
    EXPECT_NE(list[i].reproducer.find("pagelab "), std::string::npos) << list[i].id;
    for (std::size_t k = i + 1; k < list.size(); ++k) EXPECT_NE(list[i].id, list[k].id);
  }
}

// The shipped examples on every backend available here: no case may fail (known
// deviations and differences inside the allowed set are reported, not failed).
TEST(ScenarioCompareBackends, ExamplesNeverFailOnAnyBackend) {
  const auto slots = sc::every_backend();
  std::string why;
  bool any = false;
  for (const auto& s : slots) {
    any = any || !s.unavailable;
    if (s.unavailable) why += s.name + ": " + *s.unavailable + "; ";
  }
  if (!any) GTEST_SKIP() << "no backend available: " << why;
  for (const char* name : {"reserved_bit51.pgl", "stale_translation.pgl", "foreign_writer.pgl",
                           "fault_drops_tlb_entry.pgl", "amd_pml4e_bit8.pgl", "smap_wp0.pgl"}) {
    const auto s = sc::load_scenario(std::string(PAGELAB_SOURCE_DIR "/examples/") + name);
    const auto cmp = sc::compare_scenario(s, slots);
    EXPECT_NE(cmp.overall(), sc::CaseClass::Failed) << sc::format_comparison(cmp, true);
    EXPECT_EQ(cmp.results.size(), cmp.backends.size());
    for (const auto& c : cmp.cases) {
      for (const auto& b : c.backends) {
        // A known deviation always carries an id from the list.
        if (!b.deviation.empty()) {
          bool listed = false;
          for (const auto& d : lab::known_access_deviations()) listed |= d.id == b.deviation;
          EXPECT_TRUE(listed) << b.deviation;
        }
      }
    }
  }
}

}  // namespace
}  // namespace pagelab::test
