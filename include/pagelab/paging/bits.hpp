#pragma once
// Named architectural bits of the control registers (Intel SDM vol. 3 §2.5, AMD APM
// vol. 2 §3.1). Logic uses these names, never bare masks.
#include <cstdint>

namespace pagelab::paging {

constexpr std::uint64_t bit(unsigned n) {
  return std::uint64_t{1} << n;
}
// Bits lo..hi inclusive.
constexpr std::uint64_t bits(unsigned lo, unsigned hi) {
  return (hi >= 63 ? ~std::uint64_t{0} : (bit(hi + 1) - 1)) & ~(bit(lo) - 1);
}

struct Cr0 {
  static constexpr std::uint64_t Pe = bit(0);
  static constexpr std::uint64_t Mp = bit(1);
  static constexpr std::uint64_t Em = bit(2);
  static constexpr std::uint64_t Ts = bit(3);
  static constexpr std::uint64_t Et = bit(4);
  static constexpr std::uint64_t Ne = bit(5);
  static constexpr std::uint64_t Wp = bit(16);
  static constexpr std::uint64_t Am = bit(18);
  static constexpr std::uint64_t Nw = bit(29);
  static constexpr std::uint64_t Cd = bit(30);
  static constexpr std::uint64_t Pg = bit(31);
};

struct Cr3 {
  static constexpr std::uint64_t Pwt = bit(3);
  static constexpr std::uint64_t Pcd = bit(4);
  static constexpr std::uint64_t PcidMask = bits(0, 11);
  static constexpr std::uint64_t NoFlush = bit(63);
};

struct Cr4 {
  static constexpr std::uint64_t Vme = bit(0);
  static constexpr std::uint64_t Pvi = bit(1);
  static constexpr std::uint64_t Tsd = bit(2);
  static constexpr std::uint64_t De = bit(3);
  static constexpr std::uint64_t Pse = bit(4);
  static constexpr std::uint64_t Pae = bit(5);
  static constexpr std::uint64_t Mce = bit(6);
  static constexpr std::uint64_t Pge = bit(7);
  static constexpr std::uint64_t Pce = bit(8);
  static constexpr std::uint64_t Osfxsr = bit(9);
  static constexpr std::uint64_t Osxmmexcpt = bit(10);
  static constexpr std::uint64_t Umip = bit(11);
  static constexpr std::uint64_t La57 = bit(12);
  static constexpr std::uint64_t Vmxe = bit(13);
  static constexpr std::uint64_t Smxe = bit(14);
  static constexpr std::uint64_t Fsgsbase = bit(16);
  static constexpr std::uint64_t Pcide = bit(17);
  static constexpr std::uint64_t Osxsave = bit(18);
  static constexpr std::uint64_t Smep = bit(20);
  static constexpr std::uint64_t Smap = bit(21);
  static constexpr std::uint64_t Pke = bit(22);
  static constexpr std::uint64_t Cet = bit(23);
  static constexpr std::uint64_t Pks = bit(24);
};

struct Efer {
  static constexpr std::uint32_t Msr = 0xC000'0080;
  static constexpr std::uint64_t Sce = bit(0);
  static constexpr std::uint64_t Lme = bit(8);
  static constexpr std::uint64_t Lma = bit(10);
  static constexpr std::uint64_t Nxe = bit(11);
};

struct Rflags {
  static constexpr std::uint64_t Fixed1 = bit(1);
  static constexpr std::uint64_t If = bit(9);
  static constexpr std::uint64_t IoplMask = bits(12, 13);
  static constexpr std::uint64_t Ac = bit(18);
};

}  // namespace pagelab::paging
