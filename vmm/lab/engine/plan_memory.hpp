#pragma once
// Guest memory as the engine's plan of a chunk sees it (where a fetch goes, what an
// access touches): the tables as the chunk's writes will have made them by then.
// Checked, the writes go into the judge's model itself and are undone when the plan is
// done (a map over the model cost a tree lookup at every entry a walk read); unchecked,
// RAM is the base and stays as it is, a map holds the writes.
#include <cstdint>
#include <map>
#include <vector>

#include "judge/cached_walk.hpp"
#include "pagelab/paging/decision.hpp"
#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::lab {

class PlanMemory {
 public:
  // `model`: the judge's model, written and restored (checked); else `ram`, read only.
  PlanMemory(paging::BufferMemory* model, const paging::PhysicalMemory& ram, unsigned entry_bytes);
  PlanMemory(const PlanMemory&) = delete;
  PlanMemory& operator=(const PlanMemory&) = delete;
  ~PlanMemory() { restore(); }  // also when a walk throws

  // A write of 4 or 8 bytes the chunk makes before the next access.
  void write(std::uint64_t at, unsigned bytes, std::uint64_t value);
  // An instruction planted at `pa` (in RAM too): the model keeps it.
  void planted(std::uint64_t pa, std::uint8_t b0, std::uint8_t b1);
  // Puts the model back as it was, with the planted instructions. Idempotent.
  void restore();

  // For the decision walk (paging::decide, walk_core.hpp's memory concept).
  [[nodiscard]] std::uint64_t read(paging::GuestPhys at, unsigned bytes) const {
    if (model_ != nullptr) return flat_.read(at, bytes);
    return bytes == sizeof(std::uint32_t) ? overlay_.read32(at) : overlay_.read64(at);
  }
  // The same memory for what takes a PhysicalMemory (the PDPTE loads).
  [[nodiscard]] const paging::PhysicalMemory& physical() const;

 private:
  struct Saved {
    std::uint64_t at, old;
    unsigned bytes;
  };
  paging::BufferMemory* model_;
  std::map<std::uint64_t, std::uint64_t> entries_;  // unchecked: of the mode's entry width
  judge::OverlayMemory overlay_;                    // unchecked: RAM under entries_
  paging::FlatMemory flat_;                         // checked: the model's bytes
  std::vector<Saved> undo_;
  struct Plant {
    std::uint64_t pa;
    std::uint8_t b0, b1;
  };
  std::vector<Plant> plants_;
};

}  // namespace pagelab::lab
