#pragma once
// The checker of docs/json.md ("pagelab/1"): every command's --json output, error paths
// included, must pass it. It returns what is wrong, one line per problem, with the path
// of the field ("" when the document conforms).
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

namespace pagelab::test {

class JsonSchemaChecker {
 public:
  std::string check(const nlohmann::json& doc, const std::string& command) {
    problems_.clear();
    if (!doc.is_object()) return "the document is not an object";
    if (doc.value("schema", "") != "pagelab/1") problem("", "schema is not \"pagelab/1\"");
    if (doc.value("command", "") != command) problem("", "command is not \"" + command + "\"");
    if (doc.contains("error")) {
      const auto& e = doc["error"];
      if (!e.is_object() || !e.contains("message") || !e["message"].is_string() ||
          !e.contains("exit_status") || !e["exit_status"].is_number_integer()) {
        problem("/error", "needs a string message and an integer exit_status");
      }
    }
    walk(doc, "");
    return problems_;
  }

 private:
  void problem(const std::string& path, const std::string& what) {
    problems_ += (path.empty() ? "/" : path) + ": " + what + "\n";
  }

  void walk(const nlohmann::json& j, const std::string& path) {
    if (j.is_array()) {
      for (std::size_t i = 0; i < j.size(); ++i) walk(j[i], path + "/" + std::to_string(i));
      return;
    }
    if (j.is_number_integer() || j.is_number_unsigned()) {
      // A 64-bit value as a JSON number loses precision above 2^53; every such value is
      // a hex string, so no plain number needs more than 32 bits.
      if (j.is_number_unsigned() ? j.get<std::uint64_t>() > 0xffffffffULL
                                 : j.get<std::int64_t>() > 0xffffffffLL) {
        problem(path, "a number above 2^32 (64-bit values are hex strings)");
      }
      return;
    }
    if (!j.is_object()) return;
    for (const auto& [key, value] : j.items()) {
      const std::string p = path + "/" + key;
      if (!std::regex_match(key, key_re_)) problem(p, "a key that is not an identifier");
      if (hex_keys_.count(key) != 0 && !value.is_null() && !value.is_object() &&
          !value.is_array() && !value.is_boolean()) {
        if (!value.is_string() || !std::regex_match(value.get<std::string>(), hex_re_)) {
          problem(p, "a 64-bit value that is not a hex string \"0x...\"");
        }
      }
      if (key == "verdict") {
        if (!value.is_string() || verdicts_.count(value.get<std::string>()) == 0) {
          problem(p, "verdict is not passed, failed, skipped or known-deviation");
        }
      }
      if (key == "counts") {
        if (!value.is_object()) {
          problem(p, "counts is not an object");
        } else {
          for (const auto& [k, n] : value.items()) {
            if (verdicts_.count(k) == 0 || !n.is_number_unsigned()) {
              problem(p + "/" + k, "counts are keyed by verdict, with a count");
            }
          }
        }
      }
      if (key == "known_deviations" && value.is_object()) {
        for (const auto& [k, n] : value.items()) {
          if (!n.is_number_unsigned()) problem(p + "/" + k, "a known deviation's count");
        }
      }
      if (key == "kind" && value.is_string() && kinds_.count(value.get<std::string>()) != 0 &&
          value.get<std::string>() != "ok") {
        if (!j.contains("vector") || !j["vector"].is_number_unsigned()) {
          problem(p, "an exception outcome without a numeric vector");
        }
      }
      walk(value, p);
    }
  }

  std::string problems_;
  const std::regex key_re_{"[A-Za-z0-9_.:/-]+"};
  const std::regex hex_re_{"0x[0-9a-f]+"};
  const std::set<std::string> verdicts_{"passed", "failed", "skipped", "known-deviation"};
  const std::set<std::string> kinds_{"ok", "page-fault", "general-protection", "exception"};
  const std::set<std::string> hex_keys_{"address",
                                        "entry_address",
                                        "physical",
                                        "cr0",
                                        "cr2",
                                        "cr3",
                                        "cr4",
                                        "efer",
                                        "error_code",
                                        "value",
                                        "base",
                                        "limit",
                                        "effective_limit",
                                        "offset",
                                        "rip",
                                        "sets",
                                        "mask",
                                        "high",
                                        "gate_offset"};
};

}  // namespace pagelab::test
