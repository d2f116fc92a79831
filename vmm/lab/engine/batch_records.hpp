#pragma once
// Encoding of engine operations into the probe's 64-byte batch records and decoding
// of the results (probe_abi.h, PROBE_CMD_BATCH). Only operations the probe runs
// are encoded; OpForeignWrite never reaches the guest.
#include <array>
#include <cstdint>

#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::lab::batch {

using Record = std::array<std::uint8_t, 64>;

// Throws std::invalid_argument for a size other than 1/2/4/8 or an OpForeignWrite, and
// in 32-bit and PAE paging (`mode`) for an address or entry GPA at or above 4 GiB (no
// such linear address exists there) or a 32-bit paging entry value wider than 32 bits.
Record encode(const Op& op, paging::PagingMode mode = paging::PagingMode::Level4);
// Everything in the record is untrusted: unknown status values become BadCommand.
OpResult decode(const Record& record, const Op& op);

}  // namespace pagelab::lab::batch
