#pragma once
// The words of the oracle's explanations, shared by walk() and to_outcome().
#include <string>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/walk_core.hpp"

namespace pagelab::paging {

std::string non_canonical_reason(Linear address, unsigned linear_width);
// Why a permission #PF happened; both causes when both a paging right and a key refused.
std::string denial_reason(RightDenial right, KeyDenial key, unsigned protection_key,
                          bool supervisor);

}  // namespace pagelab::paging
