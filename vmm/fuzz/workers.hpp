#pragma once
// The machines a fuzz campaign runs on and the workers that run its batches: a machine
// per backend and paging mode for each worker, and a thread per worker that takes the
// batches given to it in turn (campaign.cpp makes them and takes them back in order).
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pagelab/fuzz/fuzz_case.hpp"
#include "pagelab/fuzz/runner.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::fuzz {

// One backend's machine in one paging mode, and its engine. A machine keeps its mode:
// from long mode the engine's start hangs on the way to legacy paging and cannot switch
// 4-/5-level, so a change of mode was a machine reset (for a campaign over every mode,
// one per batch: 11k cases/s where one mode alone ran 36k-52k on QEMU).
struct Slot {
  lab::BackendKind kind;
  paging::PagingMode mode;
  std::string name;
  std::unique_ptr<lab::Lab> lab;
  std::unique_ptr<ModeRunner> runner;
  bool strict = false;
  // The CPU its worker's thread is kept on, which the machine shares (nullopt: none).
  std::optional<unsigned> cpu;

  Slot(lab::BackendKind k, paging::PagingMode m, bool strict_) : kind(k), mode(m), strict(strict_) {
    lab = std::make_unique<lab::Lab>(options());
    name = std::string(lab->backend_name());
  }
  lab::LabOptions options() const {
    lab::LabOptions o;
    o.backend = kind;
    return o;
  }
  void renew_lab() {
    runner.reset();
    try {
      lab->reset();
    } catch (const std::exception&) {
      lab.reset();
      lab = std::make_unique<lab::Lab>(options());
    }
  }
  ModeRunner& ready() {
    if (!runner) {
      runner = std::make_unique<ModeRunner>(*lab, mode);
      runner->set_strict(strict);
    }
    return *runner;
  }
  // A batch; when the guest stops (or the machine goes), the machine is renewed and the
  // cases run one by one, so that the one that stops it is named. The machine (a new
  // one too) shares `cpu` first.
  std::vector<CaseOutcome> run(std::span<const FuzzCase> cases, bool isolated = false);
};

// Machines of one kind of work: slot(mode, i) is backend i's machine in that mode,
// started when first asked for.
class Crew {
 public:
  Crew(std::vector<lab::BackendKind> kinds, bool strict)
      : kinds_(std::move(kinds)), strict_(strict) {}
  Slot& slot(paging::PagingMode mode, std::size_t i) {
    auto& s = slots_[{mode, i}];
    if (!s) s = std::make_unique<Slot>(kinds_[i], mode, strict_);
    return *s;
  }
  void drop(paging::PagingMode mode, std::size_t i) { slots_.erase({mode, i}); }
  template <typename F>
  void each(F f) const {
    for (const auto& [key, s] : slots_) f(*s);
  }

 private:
  std::vector<lab::BackendKind> kinds_;
  bool strict_;
  std::map<std::pair<paging::PagingMode, std::size_t>, std::unique_ptr<Slot>> slots_;
};

// A batch of one mode's cases on its way through a worker: every backend's outcomes.
struct Batch {
  paging::PagingMode mode;
  std::vector<FuzzCase> cases;
  std::vector<std::vector<CaseOutcome>> outs;  // per backend
  std::vector<bool> ran;
  std::vector<double> took;
  std::vector<std::uint64_t> exits;
  std::exception_ptr error;
  bool done = false;
};

// Workers run batches while the campaign's thread makes the next cases and takes in the
// finished batches in order: each worker runs its machines' batches one after another,
// so a machine's history (what earlier cases left in guest RAM) is the same in every run
// with the same --jobs. Worker j's thread and machines are kept on cpus[j] where it has
// one (nullopt: wherever the kernel puts them).
class Workers {
 public:
  Workers(std::vector<Crew>& crews,
          const std::map<paging::PagingMode, std::set<std::size_t>>& unavailable,
          std::vector<std::optional<unsigned>> cpus)
      : crews_(crews), unavailable_(unavailable), queues_(crews.size()), cpus_(std::move(cpus)) {
    cpus_.resize(crews.size());
    for (std::size_t j = 0; j < crews.size(); ++j) threads_.emplace_back([this, j] { loop(j); });
  }
  ~Workers() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    work_.notify_all();
    for (auto& t : threads_) t.join();
  }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void submit(std::size_t worker, Batch& b) {
    {
      std::lock_guard lock(m_);
      queues_[worker].push_back(&b);
    }
    work_.notify_all();
  }
  bool done(const Batch& b) {
    std::lock_guard lock(m_);
    return b.done;
  }
  void wait(const Batch& b) {
    std::unique_lock lock(m_);
    done_.wait(lock, [&] { return b.done; });
  }

 private:
  void loop(std::size_t j);
  // `cpu`: the CPU worker j's thread is kept on, which its machines share.
  void run(std::size_t j, Batch& b, std::optional<unsigned> cpu);

  std::vector<Crew>& crews_;
  const std::map<paging::PagingMode, std::set<std::size_t>>& unavailable_;
  std::mutex m_;
  std::condition_variable work_, done_;
  std::vector<std::deque<Batch*>> queues_;
  std::vector<std::optional<unsigned>> cpus_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace pagelab::fuzz
