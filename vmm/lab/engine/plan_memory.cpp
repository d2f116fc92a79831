#include "engine/plan_memory.hpp"

#include <cstring>

namespace pagelab::lab {

PlanMemory::PlanMemory(paging::BufferMemory* model, const paging::PhysicalMemory& ram,
                       unsigned entry_bytes)
    : model_(model), overlay_(ram, entries_, entry_bytes) {
  if (model_ != nullptr) flat_ = {model_->bytes().data(), model_->bytes().size()};
}

const paging::PhysicalMemory& PlanMemory::physical() const {
  if (model_ != nullptr) return *model_;
  return overlay_;
}

void PlanMemory::write(std::uint64_t at, unsigned bytes, std::uint64_t value) {
  if (model_ == nullptr) {
    entries_[at] = value;
    return;
  }
  auto& m = model_->bytes();
  if (at + bytes > m.size()) return;
  auto* p = m.data() + at;
  // Fixed sizes: a memcpy of a variable length is a libc call.
  if (bytes == sizeof(std::uint32_t)) {
    std::uint32_t old = 0;
    std::memcpy(&old, p, sizeof old);
    undo_.push_back({at, old, bytes});
    const auto v = static_cast<std::uint32_t>(value);
    std::memcpy(p, &v, sizeof v);
  } else {
    std::uint64_t old = 0;
    std::memcpy(&old, p, sizeof old);
    undo_.push_back({at, old, bytes});
    std::memcpy(p, &value, sizeof value);
  }
}

void PlanMemory::planted(std::uint64_t pa, std::uint8_t b0, std::uint8_t b1) {
  if (model_ == nullptr) return;
  auto& m = model_->bytes();
  m[pa] = b0;
  m[pa + 1] = b1;
  plants_.emplace_back(pa, static_cast<std::uint16_t>(b0 | b1 << 8));
}

void PlanMemory::restore() {
  if (model_ == nullptr) return;
  auto& m = model_->bytes();
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    auto* p = m.data() + it->at;
    if (it->bytes == sizeof(std::uint32_t)) {
      const auto v = static_cast<std::uint32_t>(it->old);
      std::memcpy(p, &v, sizeof v);
    } else {
      std::memcpy(p, &it->old, sizeof it->old);
    }
  }
  undo_.clear();
  // An instruction planted where the chunk also wrote an entry stays: RAM has it.
  for (const auto& [pa, bytes] : plants_) {
    m[pa] = static_cast<std::uint8_t>(bytes & 0xff);
    m[pa + 1] = static_cast<std::uint8_t>(bytes >> 8);
  }
}

}  // namespace pagelab::lab
