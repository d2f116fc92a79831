#include "pagelab/matrix/matrix_run.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "pagelab/campaign/cpu_time.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/judge/access_deviations.hpp"
#include "pagelab/lab/judge/ad_deviations.hpp"
#include "pagelab/matrix/case_layout.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::matrix {

using lab::CheckedResult;
using lab::ControlRegister;
using lab::Op;
using lab::OpAccess;
using lab::OpInvlpg;
using lab::OpWriteControl;
using lab::OpWriteEntry;
using paging::Cr0;
using paging::Cr4;
using paging::Efer;
using paging::PagingMode;

bool Selection::selects(std::uint64_t number) const {
  if (number % sample != 0) return false;
  const auto n = number / sample;
  if (!shard.owns(n)) return false;
  return (n / shard.count) % workers == worker;
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::Passed:
      return "passed";
    case Verdict::Failed:
      return "failed";
    case Verdict::Skipped:
      return "skipped";
    case Verdict::KnownDeviation:
      return "known-deviation";
  }
  return "?";
}

void ModeResult::merge(const ModeResult& o) {
  ran += o.ran;
  agreed += o.agreed;
  unexplained += o.unexplained;
  skipped_cases += o.skipped_cases;
  for (const auto& [k, v] : o.deviations) deviations[k] += v;
  for (const auto& [k, v] : o.skip_reasons) skip_reasons[k] += v;
  reports.insert(reports.end(), o.reports.begin(), o.reports.end());
  std::sort(reports.begin(), reports.end(),
            [](const CaseReport& a, const CaseReport& b) { return a.number < b.number; });
  failures_not_kept += o.failures_not_kept;
  exits += o.exits;
  ops += o.ops;
  control_writes += o.control_writes;
  entry_writes += o.entry_writes;
  seconds = std::max(seconds, o.seconds);
  cases_in_mode = std::max(cases_in_mode, o.cases_in_mode);
  cpu_seconds += o.cpu_seconds;
  stopped = stopped || o.stopped;
  if (!skipped && o.skipped) skipped = o.skipped;
}

namespace {

using campaign::thread_cpu_time;

constexpr unsigned PdpteLevel = 3;
constexpr std::size_t OpsPerBatch = 4000;

// Why this platform cannot run a case, or nothing.
class PlatformLimits {
 public:
  PlatformLimits(const paging::CpuFeatures& f, const FlagSpace& space) : f_(f), space_(space) {}
  [[nodiscard]] const char* why_not(const Setup& s) const {
    if ((s.control & ControlSmep) != 0 && !f_.smep) return "CR4.SMEP: the CPU lacks SMEP (CPUID)";
    if ((s.control & ControlSmap) != 0 && !f_.smap) return "CR4.SMAP: the CPU lacks SMAP (CPUID)";
    if ((s.control & ControlPke) != 0 && !f_.pku) return "CR4.PKE: the CPU lacks PKU (CPUID)";
    if ((s.control & ControlNxe) != 0 && !f_.nx) return "EFER.NXE: the CPU lacks NX (CPUID)";
    for (const auto l : space_.levels()) {
      if ((s.level[l] & (FlagR51 | FlagRmax)) != 0 && f_.maxphyaddr >= 52)
        return "bit 51 / MAXPHYADDR: MAXPHYADDR is 52, no address bit is reserved";
    }
    return nullptr;
  }

 private:
  paging::CpuFeatures f_;
  const FlagSpace& space_;
};

std::optional<std::string> mode_unavailable(const MatrixMode& m, const paging::CpuFeatures& f) {
  if (m.paging == PagingMode::Level5 && !f.la57)
    return "5-level paging needs LA57, which CPUID does not report";
  if (m.leaf_size == paging::PageSize::Size1G && !f.page1g)
    return "1 GiB pages need 1GB-pages (CPUID 0x80000001:EDX[26]), which CPUID does not report";
  if (m.paging == PagingMode::Pae && !f.pae) return "PAE paging needs PAE (CPUID)";
  if (m.leaf_size == paging::PageSize::Size4M && !f.pse) return "4 MiB pages need PSE (CPUID)";
  return std::nullopt;
}

struct PendingCase {
  std::uint64_t number;
  Setup setup;
  std::size_t first_op, access_op;
  std::size_t last_access_op;  // access_op, or the second access of a `twice` case
  // Op index and entry GPA of each read-back, one per level at most: kept inline, as
  // a vector each they were one allocation per case.
  struct ReadBacks {
    std::array<std::pair<std::size_t, std::uint64_t>, 5> items{};
    std::size_t count = 0;
    void emplace_back(std::size_t op, std::uint64_t gpa) { items.at(count++) = {op, gpa}; }
    [[nodiscard]] auto begin() const { return items.begin(); }
    [[nodiscard]] auto end() const { return items.begin() + static_cast<std::ptrdiff_t>(count); }
  } readbacks;
};

class ModeRunner {
 public:
  ModeRunner(lab::Lab& lab, const MatrixMode& mode, const RunOptions& options, ModeResult& result)
      : lab_(lab),
        mode_(mode),
        space_(mode),
        options_(options),
        result_(result),
        features_(lab.cpu().paging_features()),
        limits_(features_, space_),
        layout_(layout_of(mode)),
        platform_keys_(lab::platform_keys(lab)) {}

  void run() {
    const auto start = std::chrono::steady_clock::now();
    const auto cpu_start = thread_cpu_time() + lab_.backend().outside_cpu_time();
    lab::EngineOptions eo;
    eo.mode = mode_.paging;
    // Deviations are counted by name; their walks are printed only when they fail.
    eo.explain_deviations = options_.strict;
    // A case reads its access's entries and verdict; the judgements of agreeing
    // accesses are not worth a copy each.
    eo.keep_agreeing_judgements = false;
    engine_ = std::make_unique<lab::Engine>(lab_, eo);
    auto& space = engine_->space();
    space.map(layout_.va, layout_.frame, paging::page_bytes(mode_.leaf_size), mode_.leaf_size,
              paging::Pte::User | paging::Pte::Writable);
    for (const auto l : space_.levels()) {
      const auto at = space.entry_address(layout_.va, l);
      const auto v = space.read_entry(layout_.va, l);
      entry_[l] = at;
      address_part_[l] = v & ~owned_bits(mode_, l, features_.maxphyaddr);
      current_[l] = v;
      known_[l] = true;
      // The address of the next table (or the frame) must survive every case's flags.
      const std::uint64_t address =
          v & paging::bits(paging::Pte::FrameShift,
                           mode_.paging == PagingMode::Bits32 ? 31 : features_.maxphyaddr - 1);
      if (address_part_[l] != address) {
        throw std::logic_error(
            fmt::format("matrix: the {} entry {:#x} keeps {:#x} of its address bits {:#x}",
                        level_token(mode_.paging, l), v, address_part_[l], address));
      }
    }
    // The fetched instruction is there before any case, so that a CPU that fetches where
    // the judge expects a fault returns instead of running zeros.
    auto* code = lab_.ram().host(layout_.frame + layout_.fetch_offset, 2);
    code[0] = BATCH_FETCH_RETURN_0;
    code[1] = BATCH_FETCH_RETURN_1;
    try {
      engine_->start();
    } catch (const lab::GuestStopped&) {
      throw;
    } catch (const std::exception& e) {
      result_.skipped = e.what();
      return;
    }
    const auto st = engine_->cpu_state();
    cr0_ = st.cr0;
    cr4_ = st.cr4;
    efer_ = st.efer;
    pkru_known_ = false;

    auto consider = [&](std::uint64_t number, const Setup& s) {
      if (options_.selection.only ? !(s == *options_.selection.only)
                                  : !options_.selection.selects(number)) {
        return true;
      }
      if (options_.selection.limit != 0 && selected_ >= options_.selection.limit) return false;
      ++selected_;
      if (const char* why = limits_.why_not(s)) {
        ++result_.skipped_cases;
        ++result_.skip_reasons[why];
        return true;
      }
      add_case(number, s);
      if (ops_.size() >= OpsPerBatch) return flush();
      return true;
    };
    // Every worker walks the whole space (each keeps its share): one that got to the
    // end knows how many cases the mode has, and nobody counts them again.
    std::uint64_t walked = 0;
    bool whole = true;
    space_.for_each([&](std::uint64_t number, const Setup& s) {
      walked = number + 1;
      whole = consider(number, s);
      return whole;
    });
    if (whole) result_.cases_in_mode = walked;
    if (!ops_.empty()) flush();
    // Leave the control bits as the engine entered the mode: the next engine (another
    // mode on this Lab) starts from them.
    if (cr4_ != st.cr4 || cr0_ != st.cr0 || efer_ != st.efer) {
      const std::vector<Op> restore = {OpWriteControl{ControlRegister::Cr4, st.cr4},
                                       OpWriteControl{ControlRegister::Cr0, st.cr0},
                                       OpWriteControl{ControlRegister::Efer, st.efer}};
      engine_->run(restore);
    }
    result_.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result_.cpu_seconds = std::chrono::duration<double>(
                              thread_cpu_time() + lab_.backend().outside_cpu_time() - cpu_start)
                              .count();
  }

 private:
  std::uint64_t desired(unsigned level, const Setup& s) const {
    return address_part_[level] | entry_bits(mode_, level, s.level[level], features_.maxphyaddr);
  }

  void add_case(std::uint64_t number, const Setup& s) {
    PendingCase c{number, s, ops_.size(), 0, 0, {}};

    // Control registers: only what changes.
    auto set_bit = [](std::uint64_t v, std::uint64_t b, bool on) { return on ? v | b : v & ~b; };
    const auto efer = set_bit(efer_, Efer::Nxe, (s.control & ControlNxe) != 0);
    auto cr4 = set_bit(cr4_, Cr4::Smep, (s.control & ControlSmep) != 0);
    cr4 = set_bit(cr4, Cr4::Smap, (s.control & ControlSmap) != 0);
    cr4 = set_bit(cr4, Cr4::Pke, (s.control & ControlPke) != 0);
    const auto cr0 = set_bit(cr0_, Cr0::Wp, (s.control & ControlWp) != 0);
    if (space_.has_control(ControlNxe) && efer != efer_) {
      ops_.push_back(OpWriteControl{ControlRegister::Efer, efer});
      efer_ = efer;
      ++result_.control_writes;
    }
    if (cr4 != cr4_) {
      ops_.push_back(OpWriteControl{ControlRegister::Cr4, cr4});
      cr4_ = cr4;
      ++result_.control_writes;
    }
    if (cr0 != cr0_) {
      ops_.push_back(OpWriteControl{ControlRegister::Cr0, cr0});
      cr0_ = cr0;
      ++result_.control_writes;
    }
    if ((s.control & ControlPke) != 0) {
      const std::uint64_t pkru = ((s.pkru & PkruAd) != 0 ? paging::Pkru::access_disable(1) : 0) |
                                 ((s.pkru & PkruWd) != 0 ? paging::Pkru::write_disable(1) : 0);
      if (!pkru_known_ || pkru != pkru_) {
        ops_.push_back(OpWriteControl{ControlRegister::Pkru, pkru});
        pkru_ = pkru;
        pkru_known_ = true;
        ++result_.control_writes;
      }
    }
    // Entries that differ from what memory holds (or may hold: A/D the CPU set).
    bool invlpg = false, reload_cr3 = false;
    for (const auto l : space_.levels()) {
      const auto want = desired(l, s);
      if (known_[l] && current_[l] == want) continue;
      ops_.push_back(OpWriteEntry{entry_[l], want});
      current_[l] = want;
      known_[l] = true;
      ++result_.entry_writes;
      if (mode_.paging == PagingMode::Pae && l == PdpteLevel) {
        reload_cr3 = true;
      } else {
        invlpg = true;
      }
    }
    // MOV CR3 reloads the PDPTE registers and flushes the rest (SDM 4.4.1, 4.10.4.1).
    if (reload_cr3) {
      ops_.push_back(OpWriteControl{ControlRegister::Cr3, engine_->cpu_state().cr3});
    } else if (invlpg) {
      // The page of the byte accessed: in a large page that is the same translation
      // (SDM 4.10.4.1), and QEMU TCG keeps translated code of the other 4 KiB pages of a
      // large page across INVLPG (see the README's permission-matrix notes).
      const bool fetch_now = (s.access & AccessFetch) != 0;
      ops_.push_back(
          OpInvlpg{layout_.va + (fetch_now ? layout_.fetch_offset : layout_.data_offset)});
    }
    OpAccess a;
    const bool fetch = (s.access & AccessFetch) != 0;
    a.type = (s.access & AccessWrite) != 0 ? paging::AccessType::Write
             : fetch                       ? paging::AccessType::Fetch
                                           : paging::AccessType::Read;
    a.address = layout_.va + (fetch ? layout_.fetch_offset : layout_.data_offset);
    a.privilege =
        (s.access & AccessUser) != 0 ? paging::Privilege::User : paging::Privilege::Supervisor;
    a.ac = (s.access & AccessAc) != 0;
    a.size = 8;
    a.write_value = 0x6d61'7472'6978'0000 | (number & 0xffff);
    c.access_op = ops_.size();
    ops_.push_back(a);
    c.last_access_op = c.access_op;
    if ((s.access & AccessTwice) != 0) {
      c.last_access_op = ops_.size();
      ops_.push_back(a);
    }
    // Entries the walk reaches whose A (or, at the leaf, D) the access may set: read back
    // by the probe right after, so A/D are checked at every level for every case.
    const auto stop = stopping_level(space_, s);
    for (const auto l : space_.levels()) {
      if (stop != 0 && l <= stop) break;
      if (mode_.paging == PagingMode::Pae && l == PdpteLevel) continue;  // a register
      const bool leaf = l == mode_.leaf_level;
      const bool may_change = (s.level[l] & FlagA) == 0 || (leaf && (s.level[l] & FlagD) == 0);
      if (!may_change) continue;
      known_[l] = false;
      if (!options_.ad_readback) continue;
      OpAccess r;
      r.address = paging::Linear(entry_[l].value());  // the table pool is identity-mapped
      r.type = paging::AccessType::Read;
      r.size = paging::entry_bytes(mode_.paging);
      r.privilege = paging::Privilege::Supervisor;
      r.checked_by_caller = true;  // check_readbacks() judges what it read
      c.readbacks.emplace_back(ops_.size(), entry_[l].value());
      ops_.push_back(r);
    }
    pending_.push_back(std::move(c));
  }

  bool flush() {
    const auto exits = engine_->vm_exits();
    const auto results = engine_->run(ops_);
    result_.exits += engine_->vm_exits() - exits;
    result_.ops += ops_.size();
    for (const auto& c : pending_) judge_case(c, results);
    done_ += pending_.size();
    ops_.clear();
    pending_.clear();
    bool go = true;
    if (options_.on_batch && !options_.on_batch(done_)) {
      result_.stopped = true;
      go = false;
    }
    return go;
  }

  void judge_case(const PendingCase& c, const std::vector<CheckedResult>& results) {
    const auto end = &c == &pending_.back() ? results.size() : (&c + 1)->first_op;
    ++result_.ran;
    const auto& access = results[c.access_op];
    std::optional<std::string> skipped;
    std::string failure, deviation;
    for (std::size_t i = c.first_op; i < end; ++i) {
      const auto& r = results[i];
      if (r.skipped) {
        skipped = *r.skipped;
        continue;
      }
      const bool readback = std::any_of(c.readbacks.begin(), c.readbacks.end(),
                                        [&](const auto& rb) { return rb.first == i; });
      if (readback) continue;
      if (r.agrees) continue;
      if (r.deviation) {
        deviation = *r.deviation;
        if (!options_.strict) continue;
      }
      failure += r.report.empty() ? r.summary() + "\n" : r.report;
      if (!failure.empty() && failure.back() != '\n') failure += '\n';
    }
    if (!skipped && options_.ad_readback &&
        access.observed.status != lab::ProbeStatus::BadCommand) {
      failure += check_readbacks(c, results, deviation);
    }
    if (skipped) {
      ++result_.skipped_cases;
      ++result_.skip_reasons[*skipped];
      return;
    }
    if (failure.empty()) {
      if (deviation.empty()) {
        ++result_.agreed;
      } else {
        ++result_.deviations[deviation];
      }
      return;
    }
    ++result_.unexplained;
    if (!deviation.empty()) ++result_.deviations[deviation];
    if (result_.reports.size() >= options_.keep_reports) {
      ++result_.failures_not_kept;
      return;
    }
    CaseReport rep;
    rep.number = c.number;
    rep.name = space_.name(c.setup);
    rep.setup = c.setup;
    rep.verdict = Verdict::Failed;
    rep.deviation = deviation;
    rep.report = std::move(failure);
    rep.observed = access.summary();
    result_.reports.push_back(std::move(rep));
  }

  // What the probe read back against what the judge says the access did to each entry:
  // the bits it must have set, and those it may have set (upper-level A on a fault).
  std::string check_readbacks(const PendingCase& c, const std::vector<CheckedResult>& results,
                              std::string& deviation) {
    std::string out;
    // After both accesses of a `twice` case: the second starts from what the first left.
    const auto& access = results[c.last_access_op];
    const auto& first = results[c.access_op];
    const bool narrow = paging::entry_bytes(mode_.paging) == sizeof(std::uint32_t);
    const std::uint64_t width = narrow ? 0xffff'ffffULL : ~std::uint64_t{0};
    for (const auto& [index, gpa] : c.readbacks) {
      const auto& r = results[index];
      if (r.observed.status != lab::ProbeStatus::Ok) {
        out += fmt::format("A/D read-back of the entry at {:#x} did not complete: {}\n", gpa,
                           r.summary());
        continue;
      }
      const auto got = r.observed.value & width;
      std::uint64_t want = 0, may = 0;
      bool found = false;
      for (const auto& e : access.entries) {
        if (e.address == gpa) {
          want = (e.before | e.must_set) & width;
          may = e.may_set;
          found = true;
        }
      }
      // What the first access may have set, the second found either way.
      if (&first != &access) {
        for (const auto& e : first.entries) {
          if (e.address != gpa) continue;
          may |= e.may_set;
          if (!found) want = (e.before | e.must_set) & width;
          found = true;
        }
      }
      if (!found) {
        // The walk did not use it: it must hold what the case wrote.
        for (const auto l : space_.levels()) {
          if (entry_[l].value() == gpa) want = desired(l, c.setup) & width;
        }
      }
      if (((got ^ want) & ~may) != 0) {
        const bool leaf = entry_[mode_.leaf_level].value() == gpa;
        const lab::AdReadBack rb{platform_keys_,
                                 leaf,
                                 mode_.leaf_size,
                                 access.observed.status == lab::ProbeStatus::Fault,
                                 got,
                                 want};
        if (const auto* d = lab::find_ad_deviation(rb)) {
          deviation = d->id;
          if (!options_.strict) continue;
        }
        out += fmt::format(
            "A/D: the entry at {:#x} reads {:#x} after the access; the judge allows {:#x}{}\n", gpa,
            got, want, may != 0 ? fmt::format(" (bits {:#x} either way)", may) : "");
      }
    }
    return out;
  }

  lab::Lab& lab_;
  MatrixMode mode_;
  FlagSpace space_;
  const RunOptions& options_;
  ModeResult& result_;
  paging::CpuFeatures features_;
  PlatformLimits limits_;
  CaseLayout layout_;
  std::vector<std::string> platform_keys_;
  std::unique_ptr<lab::Engine> engine_;
  std::array<paging::GuestPhys, 6> entry_{};
  std::array<std::uint64_t, 6> address_part_{}, current_{};
  std::array<bool, 6> known_{};
  std::uint64_t cr0_ = 0, cr4_ = 0, efer_ = 0, pkru_ = 0;
  bool pkru_known_ = false;
  std::vector<Op> ops_;
  std::vector<PendingCase> pending_;
  std::uint64_t selected_ = 0, done_ = 0;
};

}  // namespace

ModeResult run_mode(lab::Lab& lab, const MatrixMode& mode, const RunOptions& options) {
  ModeResult result;
  result.mode = mode.name;
  if (auto why = mode_unavailable(mode, lab.cpu().paging_features())) {
    result.skipped = *why;
    return result;
  }
  // Engine::start() in 64-bit mode loads the new root without leaving the current mode,
  // so 4-level -> 5-level on one Lab would triple-fault: each mode starts from reset.
  lab.reset();
  ModeRunner runner(lab, mode, options, result);
  runner.run();
  return result;
}

}  // namespace pagelab::matrix
