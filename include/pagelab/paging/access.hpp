#pragma once
// One memory access as the paging oracle sees it (walker.hpp explains it, decide.hpp
// decides it).
#include "pagelab/paging/address.hpp"

namespace pagelab::paging {

enum class AccessType { Read, Write, Fetch };
enum class Privilege { Supervisor, User };

struct Access {
  Linear address;
  AccessType type = AccessType::Read;
  Privilege privilege = Privilege::Supervisor;
  // An implicit supervisor access (e.g. a descriptor-table read at CPL3): U/S=0 in the
  // error code, and SMAP applies whatever RFLAGS.AC says.
  bool implicit = false;
  unsigned size = 1;  // informational; the walker translates `address` only
};

}  // namespace pagelab::paging
