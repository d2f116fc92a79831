#include "pagelab/paging/transition_bits.hpp"

#include <array>

namespace pagelab::paging {

namespace {

constexpr unsigned pos(std::uint64_t single_bit) {
  unsigned n = 0;
  while (n < 63 && (single_bit >> n) != 1) ++n;
  return n;
}

constexpr std::array kCr0 = {
    RegisterBitName{pos(Cr0::Pe), "PE", "protection enable (protected mode)"},
    RegisterBitName{pos(Cr0::Mp), "MP", "monitor coprocessor (WAIT honours TS)"},
    RegisterBitName{pos(Cr0::Em), "EM", "x87 emulation (FPU instructions raise #NM)"},
    RegisterBitName{pos(Cr0::Ts), "TS", "task switched (lazy FPU state save)"},
    RegisterBitName{pos(Cr0::Et), "ET", "extension type (hardwired to 1 since P6)"},
    RegisterBitName{pos(Cr0::Ne), "NE", "native x87 error reporting (#MF)"},
    RegisterBitName{pos(Cr0::Wp), "WP", "write protect: supervisor writes honour read-only pages"},
    RegisterBitName{pos(Cr0::Am), "AM", "alignment mask (#AC at CPL3 with RFLAGS.AC)"},
    RegisterBitName{pos(Cr0::Nw), "NW", "not write-through (needs CD=1)"},
    RegisterBitName{pos(Cr0::Cd), "CD", "cache disable"},
    RegisterBitName{pos(Cr0::Pg), "PG", "paging enabled"},
};

constexpr std::array kCr4 = {
    RegisterBitName{pos(Cr4::Vme), "VME", "virtual-8086 mode extensions"},
    RegisterBitName{pos(Cr4::Pvi), "PVI", "protected-mode virtual interrupts"},
    RegisterBitName{pos(Cr4::Tsd), "TSD", "RDTSC restricted to CPL0"},
    RegisterBitName{pos(Cr4::De), "DE", "debugging extensions (DR4/DR5 reserved, I/O breakpoints)"},
    RegisterBitName{pos(Cr4::Pse), "PSE", "4 MiB pages in 32-bit paging"},
    RegisterBitName{pos(Cr4::Pae), "PAE", "physical address extension (PAE / 4-level / 5-level)"},
    RegisterBitName{pos(Cr4::Mce), "MCE", "machine-check exception enable"},
    RegisterBitName{pos(Cr4::Pge), "PGE", "global pages (G bit survives MOV CR3)"},
    RegisterBitName{pos(Cr4::Pce), "PCE", "RDPMC allowed at any CPL"},
    RegisterBitName{pos(Cr4::Osfxsr), "OSFXSR", "OS supports FXSAVE/FXRSTOR (SSE enabled)"},
    RegisterBitName{pos(Cr4::Osxmmexcpt), "OSXMMEXCPT", "OS handles SIMD exceptions (#XM)"},
    RegisterBitName{pos(Cr4::Umip), "UMIP", "SGDT/SIDT/SLDT/SMSW/STR restricted to CPL0"},
    RegisterBitName{pos(Cr4::La57), "LA57", "57-bit linear addresses (5-level paging)"},
    RegisterBitName{pos(Cr4::Vmxe), "VMXE", "VMX enable"},
    RegisterBitName{pos(Cr4::Smxe), "SMXE", "SMX enable"},
    RegisterBitName{pos(Cr4::Fsgsbase), "FSGSBASE", "RDFSBASE/WRFSBASE/RDGSBASE/WRGSBASE enabled"},
    RegisterBitName{pos(Cr4::Pcide), "PCIDE", "process-context identifiers in CR3[11:0]"},
    RegisterBitName{pos(Cr4::Osxsave), "OSXSAVE", "XSAVE and XGETBV/XSETBV enabled"},
    RegisterBitName{pos(Cr4More::Kl), "KL", "Key Locker enabled"},
    RegisterBitName{pos(Cr4::Smep), "SMEP", "supervisor-mode execution prevention"},
    RegisterBitName{pos(Cr4::Smap), "SMAP", "supervisor-mode access prevention"},
    RegisterBitName{pos(Cr4::Pke), "PKE", "protection keys for user pages (PKRU)"},
    RegisterBitName{pos(Cr4::Cet), "CET", "control-flow enforcement (needs CR0.WP=1)"},
    RegisterBitName{pos(Cr4::Pks), "PKS", "protection keys for supervisor pages"},
    RegisterBitName{pos(Cr4More::Uintr), "UINTR", "user interrupts enabled"},
    RegisterBitName{pos(Cr4More::Lass), "LASS", "linear-address space separation"},
    RegisterBitName{pos(Cr4More::LamSup), "LAM_SUP",
                    "linear-address masking for supervisor pointers"},
    RegisterBitName{pos(Cr4More::Fred), "FRED", "flexible return and event delivery"},
};

constexpr std::array kEfer = {
    RegisterBitName{pos(Efer::Sce), "SCE", "SYSCALL/SYSRET enabled"},
    RegisterBitName{pos(Efer::Lme), "LME", "long mode enable (IA-32e once PG=1)"},
    RegisterBitName{pos(Efer::Lma), "LMA", "long mode active (read-only, set by the CPU)"},
    RegisterBitName{pos(Efer::Nxe), "NXE", "execute-disable bit 63 of PAE/4/5-level entries"},
    RegisterBitName{pos(EferMore::Svme), "SVME", "AMD: SVM enable"},
    RegisterBitName{pos(EferMore::Lmsle), "LMSLE", "AMD: long-mode segment limit enable"},
    RegisterBitName{pos(EferMore::Ffxsr), "FFXSR", "AMD: fast FXSAVE/FXRSTOR"},
    RegisterBitName{pos(EferMore::Tce), "TCE", "AMD: translation cache extension"},
};

}  // namespace

std::span<const RegisterBitName> cr0_bit_names() {
  return kCr0;
}
std::span<const RegisterBitName> cr4_bit_names() {
  return kCr4;
}
std::span<const RegisterBitName> efer_bit_names() {
  return kEfer;
}

}  // namespace pagelab::paging
