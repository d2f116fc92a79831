#include "workers.hpp"

#include <chrono>

#include "pagelab/campaign/affinity.hpp"

namespace pagelab::fuzz {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

}  // namespace

std::vector<CaseOutcome> Slot::run(std::span<const FuzzCase> cases, bool isolated) {
  try {
    lab->backend().share_cpu(cpu);
    return ready().run(cases, isolated);
  } catch (const std::exception& e) {
    renew_lab();
    if (cases.size() == 1) {
      CaseOutcome o;
      o.verdict = CaseOutcome::Verdict::Failed;
      Disagreement d;
      d.kind = "stopped";
      const auto* stop = dynamic_cast<const lab::GuestStopped*>(&e);
      d.rule = stop != nullptr ? stop->kind() : "the batch did not complete";
      d.report = e.what();
      d.observed = first_line(e.what());
      o.disagreement = std::move(d);
      return {o};
    }
    std::vector<CaseOutcome> out;
    for (const auto& c : cases) out.push_back(run(std::span(&c, 1), isolated).front());
    return out;
  }
}

void Workers::loop(std::size_t j) {
  // A worker and its machine take turns: on one CPU, a wake-up is a run-queue entry
  // rather than another CPU's interrupt, and guest RAM stays in one cache.
  std::optional<campaign::ThreadPin> pin;
  std::optional<unsigned> kept;
  if (cpus_[j]) {
    pin.emplace(*cpus_[j]);
    if (pin->pinned()) kept = cpus_[j];
  }
  for (;;) {
    Batch* b = nullptr;
    {
      std::unique_lock lock(m_);
      work_.wait(lock, [&] { return stop_ || !queues_[j].empty(); });
      // Stopping: the batches not started are dropped (their owner is unwinding).
      if (stop_) return;
      b = queues_[j].front();
      queues_[j].pop_front();
    }
    run(j, *b, kept);
    {
      std::lock_guard lock(m_);
      b->done = true;
    }
    done_.notify_all();
  }
}

void Workers::run(std::size_t j, Batch& b, std::optional<unsigned> cpu) {
  const auto backends = b.outs.size();
  try {
    for (std::size_t i = 0; i < backends; ++i) {
      if (auto it = unavailable_.find(b.mode); it != unavailable_.end() && it->second.contains(i)) {
        continue;
      }
      auto& s = crews_[j].slot(b.mode, i);
      s.cpu = cpu;
      const auto t = Clock::now();
      const auto before = s.lab->exits();
      b.outs[i] = s.run(b.cases);
      b.took[i] = seconds_since(t);
      b.exits[i] = s.lab->exits() >= before ? s.lab->exits() - before : 0;
      b.ran[i] = true;
    }
  } catch (...) {
    b.error = std::current_exception();
  }
}

}  // namespace pagelab::fuzz
