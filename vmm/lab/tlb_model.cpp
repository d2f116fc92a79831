#include "tlb_model.hpp"

#include <stdexcept>

#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::lab {

std::uint64_t OverlayMemory::read64(paging::GuestPhys address) const {
  const auto it = overrides_.find(address.value());
  return it == overrides_.end() ? base_.read64(address) : it->second;
}

void OverlayMemory::write64(paging::GuestPhys, std::uint64_t) {
  throw std::logic_error("OverlayMemory is read-only");
}

void TlbModel::fill(const paging::Walk& walk, bool pge) {
  const auto* t = std::get_if<paging::Translation>(&walk.outcome);
  if (t == nullptr) return;
  Cached c;
  c.bytes = paging::page_bytes(t->page_size);
  c.base = t->page_base.value();
  c.global = pge && t->global;
  for (const auto& step : walk.steps) c.path[step.entry_address.value()] = step.value;
  // A smaller or larger page cached earlier over the same addresses goes: one
  // translation per address is enough for the model.
  invalidate(t->page_base);
  pages_[c.base] = std::move(c);
}

const TlbModel::Cached* TlbModel::lookup(paging::Linear address) const {
  const auto a = address.value();
  auto it = pages_.upper_bound(a);
  if (it == pages_.begin()) return nullptr;
  --it;
  return a < it->second.base + it->second.bytes ? &it->second : nullptr;
}

void TlbModel::invalidate(paging::Linear address) {
  while (const auto* c = lookup(address)) pages_.erase(c->base);
}

void TlbModel::flush_non_global() {
  std::erase_if(pages_, [](const auto& kv) { return !kv.second.global; });
}

void TlbModel::flush_all() {
  pages_.clear();
}

}  // namespace pagelab::lab
