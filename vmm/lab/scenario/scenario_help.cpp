// The language reference printed by `pagelab run --help` (examples/README.md says the
// same at more length).
#include "pagelab/lab/scenario/scenario.hpp"

namespace pagelab::lab::scenario {

const std::string& scenario_help_text() {
  static const std::string text =
      R"(Scenario files (.pgl): one statement per line; '#' starts a comment; numbers are
decimal, 0x.. or 0b.., '_' separates digits (0xffff_ffff_ffff_f000). LEN is a
number or 4k/2m/1g style; LEVEL is 1-5, PT, PD, PDPT, PML4, PML5, or a Linux name in
the file's mode: PGD (the top level: PML5 in 5level, PML4 in 4level, the PDPT in pae,
the PD in 32bit), P4D (5level), PUD (PDPT; 4level and up), PMD (PD; pae and up), PTE
(PT); a level Linux folds in that mode is refused.

  mode 4level|5level|pae|32bit         paging mode (first; default 4level)
  cpu amd|intel                        this vendor's rules where AMD and Intel differ; runs
                                       only on such a CPU (after mode, before the rest)
  tables PA                            page tables from PA (default 0x300000)
  cr0 +wp|-wp    cr4 +smep +smap +pge +pke +pse    efer +nxe|-nxe    rflags +ac|-ac
                                       start: CR0.PE|PG|WP, EFER.NXE where NX exists
  pkru VALUE                           WRPKRU (2 bits per key: AD, WD); needs cr4 +pke
  table VA LEVEL at PA                 the LEVEL table translating VA lives at PA
  map VA [-> PA] LEN [4k|2m|4m|1g] [FLAGS]   leaves: present + FLAGS (PA default VA);
                                       4 KiB pages unless a size is given (a warning
                                       when LEN is 2m/4m/1g without one, and when PA
                                       overlaps the table pool)
  unmap VA LEN
  protect VA LEN +FLAG|-FLAG ...
  recursive INDEX                      top-level entry INDEX points at its own table
  set entry VA LEVEL (+FLAG|-FLAG ... | = VALUE) [via probe|via host]
                                       no invalidation; probe = guest store at CPL0
                                       (default), host = a foreign writer
  invlpg VA                            flush                (MOV CR3, same value)
  poke PA VALUE                        host stores 8 bytes of data, little-endian;
                                       PA 8-byte aligned
  read|write|fetch VA [size 1|2|4|8 (8)] [user|supervisor] [ac] [value V]
  expect ok | expect value V[|V2..] [mask M] | expect translate [VA =] PA
  expect pf err=CODE [cr2=ADDR] | expect gp | expect ad LEVEL [a=0|1] [d=0|1]
                                       each expect checks the access before it
FLAGS: w u nx g pwt pcd pat a d ps p bitN pk=N (bitN: any bit, e.g. bit51)

Every access is judged by the oracle (the outcomes the architecture allows, stale
translations included until INVLPG / MOV CR3) and run on the CPU; an expectation
no allowed outcome meets is a scenario bug, one the CPU misses is a failure with a
diff. Cases the platform cannot run are skipped with the reason it gave.)";
  return text;
}

}  // namespace pagelab::lab::scenario
