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

namespace {

// An entry of 4 or 8 bytes, with fixed-size copies (a memcpy of a variable length is a
// libc call).
std::uint64_t load(const std::uint8_t* p, unsigned bytes) {
  if (bytes == sizeof(std::uint32_t)) {
    std::uint32_t v = 0;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void store(std::uint8_t* p, unsigned bytes, std::uint64_t value) {
  if (bytes == sizeof(std::uint32_t)) {
    const auto v = static_cast<std::uint32_t>(value);
    std::memcpy(p, &v, sizeof v);
  } else {
    std::memcpy(p, &value, sizeof value);
  }
}

}  // namespace

void PlanMemory::write(std::uint64_t at, unsigned bytes, std::uint64_t value) {
  if (model_ == nullptr) {
    entries_[at] = value;
    return;
  }
  auto& m = model_->bytes();
  if (at + bytes > m.size()) return;
  undo_.push_back({at, load(m.data() + at, bytes), bytes});
  store(m.data() + at, bytes, value);
}

void PlanMemory::planted(std::uint64_t pa, std::uint8_t b0, std::uint8_t b1) {
  if (model_ == nullptr) return;
  auto& m = model_->bytes();
  m[pa] = b0;
  m[pa + 1] = b1;
  plants_.push_back({pa, b0, b1});
}

void PlanMemory::restore() {
  if (model_ == nullptr) return;
  auto& m = model_->bytes();
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it)
    store(m.data() + it->at, it->bytes, it->old);
  undo_.clear();
  // An instruction planted where the chunk also wrote an entry stays: RAM has it.
  for (const auto& [pa, b0, b1] : plants_) {
    m[pa] = b0;
    m[pa + 1] = b1;
  }
}

}  // namespace pagelab::lab
