#pragma once
// Encoding of engine operations into the probe's 64-byte batch records and decoding
// of the results (probe_abi.h, PROBE_CMD_BATCH). Only operations the probe runs
// are encoded; OpForeignWrite never reaches the guest.
#include <array>
#include <cstdint>

#include "pagelab/lab/experiment.hpp"

namespace pagelab::lab::batch {

using Record = std::array<std::uint8_t, 64>;

// Throws std::invalid_argument for a size other than 1/2/4/8 or an OpForeignWrite.
Record encode(const Op& op);
// Everything in the record is untrusted: unknown status values become BadCommand.
OpResult decode(const Record& record, const Op& op);
// PROBE_STATUS_PENDING still in the record: the probe never reached it.
bool pending(const Record& record);

}  // namespace pagelab::lab::batch
