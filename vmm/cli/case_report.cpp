// TAP13 and JUnit XML writers (case_report.hpp).
#include "case_report.hpp"

#include <fmt/core.h>

#include <map>

#include "pagelab/campaign/atomic_file.hpp"
#include "pagelab/paging/printable.hpp"

namespace pagelab::cli {

namespace {

using lab::report::CaseVerdict;

// A TAP description or directive is one line, and '#' would start a directive.
std::string tap_text(std::string_view text) {
  std::string out;
  for (const char ch : paging::printable(std::string(text), 400)) {
    if (ch == '#') {
      out += "\\#";
    } else if (ch == '\n' || ch == '\r') {
      out += ' ';
    } else {
      out += ch;
    }
  }
  return out;
}

// A YAML block scalar line by line, indented under `key: |`.
std::string yaml_block(std::string_view key, std::string_view text) {
  std::string out = fmt::format("  {}: |\n", key);
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out += fmt::format("    {}\n",
                       paging::printable(std::string(text.substr(start, end - start)), 400));
    start = end + 1;
  }
  return out;
}

std::string xml_escape(std::string_view text) {
  std::string out;
  for (const char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 refuses most control characters even as references.
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\n' && ch != '\t') {
          out += ' ';
        } else {
          out += ch;
        }
    }
  }
  return out;
}

}  // namespace

std::string tap_line(unsigned number, const CaseLine& c) {
  const std::string name = tap_text(c.name);
  switch (c.verdict) {
    case CaseVerdict::Passed:
      return fmt::format("ok {} - {}\n", number, name);
    case CaseVerdict::Skipped:
      return fmt::format("ok {} - {} # SKIP {}\n", number, name, tap_text(c.reason));
    case CaseVerdict::KnownDeviation: {
      std::string out = fmt::format("not ok {} - {} # TODO known deviation {}\n", number, name,
                                    tap_text(c.deviation));
      if (!c.reproducer.empty()) {
        out +=
            fmt::format("  ---\n  reproducer: {}\n  ...\n", paging::printable(c.reproducer, 400));
      }
      return out;
    }
    case CaseVerdict::Failed:
      break;
  }
  std::string out = fmt::format("not ok {} - {}\n  ---\n", number, name);
  out += fmt::format("  message: {}\n  severity: fail\n",
                     nlohmann::json(paging::printable(c.reason, 400)).dump());
  if (!c.details.empty()) out += yaml_block("details", c.details);
  if (!c.reproducer.empty()) {
    out += fmt::format("  reproducer: {}\n", nlohmann::json(c.reproducer).dump());
  }
  out += "  ...\n";
  return out;
}

std::string tap_document(const std::vector<CaseLine>& cases) {
  std::string out = fmt::format("TAP version 13\n1..{}\n", cases.size());
  unsigned n = 0;
  for (const auto& c : cases) out += tap_line(++n, c);
  return out;
}

std::string junit_document(std::string_view name, const std::vector<CaseLine>& cases) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const CaseLine*>> suites;
  for (const auto& c : cases) {
    auto& list = suites[c.suite];
    if (list.empty()) order.push_back(c.suite);
    list.push_back(&c);
  }
  unsigned failures = 0, skipped = 0;
  for (const auto& c : cases) {
    failures += c.verdict == CaseVerdict::Failed;
    skipped += c.verdict == CaseVerdict::Skipped;
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
      xml_escape(name), cases.size(), failures, skipped);
  for (const auto& suite : order) {
    const auto& list = suites[suite];
    unsigned f = 0, s = 0;
    for (const auto* c : list) {
      f += c->verdict == CaseVerdict::Failed;
      s += c->verdict == CaseVerdict::Skipped;
    }
    out += fmt::format(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
        xml_escape(paging::printable(suite, 400)), list.size(), f, s);
    for (const auto* c : list) {
      out += fmt::format("    <testcase classname=\"{}\" name=\"{}\"",
                         xml_escape(paging::printable(suite, 400)),
                         xml_escape(paging::printable(c->name, 400)));
      if (c->verdict == CaseVerdict::Passed) {
        out += "/>\n";
        continue;
      }
      out += ">\n";
      if (c->verdict == CaseVerdict::Failed) {
        out += fmt::format("      <failure message=\"{}\" type=\"failed\">{}</failure>\n",
                           xml_escape(paging::printable(c->reason, 400)),
                           xml_escape(c->details.empty() ? c->reason : c->details));
      } else if (c->verdict == CaseVerdict::Skipped) {
        out += fmt::format("      <skipped message=\"{}\"/>\n",
                           xml_escape(paging::printable(c->reason, 400)));
      } else {
        out += fmt::format(
            "      <properties><property name=\"known-deviation\" value=\"{}\"/></properties>\n",
            xml_escape(c->deviation));
        out += fmt::format("      <system-out>known deviation {}: {}</system-out>\n",
                           xml_escape(c->deviation), xml_escape(c->reason));
      }
      if (!c->reproducer.empty() && c->verdict != CaseVerdict::KnownDeviation) {
        out += fmt::format("      <system-out>reproduce: {}</system-out>\n",
                           xml_escape(c->reproducer));
      }
      out += "    </testcase>\n";
    }
    out += "  </testsuite>\n";
  }
  out += "</testsuites>\n";
  return out;
}

void write_junit(const std::string& path, std::string_view name,
                 const std::vector<CaseLine>& cases) {
  campaign::write_file_atomically(path, junit_document(name, cases));
}

}  // namespace pagelab::cli
