#pragma once
// Encoding of engine operations into the probe's 64-byte batch records and decoding
// of the results (probe_abi.h, PROBE_CMD_BATCH). An OpForeignWrite becomes a sync
// point (BOP_SYNC): the probe waits there while the host writes.
#include <array>
#include <cstdint>

#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::lab::batch {

using Record = std::array<std::uint8_t, 64>;

// Throws std::invalid_argument for a size other than 1/2/4/8, and
// in 32-bit and PAE paging (`mode`) for an address or entry GPA at or above 4 GiB (no
// such linear address exists there) or a 32-bit paging entry value wider than 32 bits.
Record encode(const Op& op, paging::PagingMode mode = paging::PagingMode::Level4);
// Everything in the record is untrusted: unknown status values become BadCommand.
OpResult decode(const Record& record, const Op& op);

}  // namespace pagelab::lab::batch
