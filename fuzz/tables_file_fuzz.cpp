// libFuzzer target: the page-table dump parser (explain --tables) on arbitrary bytes,
// then the walk of a few addresses over what it built. Bad input may only throw
// std::invalid_argument (parse) or std::out_of_range (a walk that leaves the dump),
// with a one-line printable message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "pagelab/paging/tables_file.hpp"
#include "pagelab/paging/walker.hpp"

namespace {

void check_message(const std::exception& e) {
  for (const char c : std::string(e.what())) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pagelab::paging;
  const std::string text(reinterpret_cast<const char*>(data), size);
  TablesFile file;
  try {
    file = parse_tables_text(text, "fuzz.tables");
  } catch (const std::invalid_argument& e) {
    check_message(e);
    return 0;
  }
  for (const auto mode :
       {PagingMode::Bits32, PagingMode::Pae, PagingMode::Level4, PagingMode::Level5}) {
    try {
      const CpuState state = state_for(file, file.mode.value_or(mode));
      for (const std::uint64_t va : {std::uint64_t{0}, std::uint64_t{0x803FE7F5CE},
                                     std::uint64_t{0x412345}, ~std::uint64_t{0}}) {
        (void)walk(file.memory, state, Access{Linear(va)});
      }
    } catch (const std::invalid_argument& e) {
      check_message(e);
    } catch (const std::out_of_range& e) {
      check_message(e);
    }
  }
  return 0;
}
