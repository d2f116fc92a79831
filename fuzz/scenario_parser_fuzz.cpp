// libFuzzer target: the scenario parser on arbitrary bytes. It must either return a
// scenario or throw ScenarioError whose message is one printable line; anything else
// (a crash, a sanitizer report, another exception, a multi-line error) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "pagelab/lab/scenario/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)pagelab::lab::scenario::parse_scenario(text, "fuzz.pgl");
  } catch (const pagelab::lab::scenario::ScenarioError& e) {
    const std::string what = e.what();
    for (const char c : what) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) std::abort();  // echoed raw: not one safe line
    }
  }
  return 0;
}
