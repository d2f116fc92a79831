#include "backend/qemu_qmp.hpp"

#include <poll.h>
#include <unistd.h>

#include <fmt/core.h>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pagelab::lab {

Qmp::Qmp(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {
  auto greeting = read_message(timeout_);
  if (!greeting || !greeting->contains("QMP")) {
    throw std::runtime_error("QEMU did not send a QMP greeting");
  }
  execute("qmp_capabilities");
}

bool Qmp::fill(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n <= 0) return n == 0 || errno == EINTR;
  char chunk[4096];
  const ssize_t got = ::read(fd_, chunk, sizeof chunk);
  if (got <= 0) return false;
  buffer_.append(chunk, static_cast<std::size_t>(got));
  return true;
}

std::optional<nlohmann::json> Qmp::read_message(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
      auto line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      // QEMU's output is untrusted like the guest's: a bad line is an error, not a crash.
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        throw std::runtime_error(fmt::format("QEMU sent a malformed QMP line: {}", line));
      }
      return j;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    if (!fill(left)) throw std::runtime_error("QEMU closed its QMP connection");
  }
}

nlohmann::json Qmp::execute(const std::string& command, const nlohmann::json& arguments) {
  nlohmann::json request{{"execute", command}};
  if (!arguments.empty()) request["arguments"] = arguments;
  const auto text = request.dump() + "\n";
  if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw std::runtime_error(
        fmt::format("QMP {}: write failed: {}", command, std::strerror(errno)));
  }
  for (;;) {
    auto reply = read_message(timeout_);
    if (!reply) {
      throw std::runtime_error(
          fmt::format("QMP {}: no answer from QEMU within {} ms", command, timeout_.count()));
    }
    if (reply->contains("event")) {
      events_.push_back(std::move(*reply));
      continue;
    }
    if (auto e = reply->find("error"); e != reply->end()) {
      throw std::runtime_error(
          fmt::format("QMP {}: {}", command, e->value("desc", std::string("error"))));
    }
    return reply->value("return", nlohmann::json::object());
  }
}

bool Qmp::pump() {
  while (true) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) break;
    if (!fill(std::chrono::milliseconds(0))) return false;
  }
  while (buffer_.find('\n') != std::string::npos) {
    auto j = read_message(std::chrono::milliseconds(0));
    if (j && j->contains("event")) events_.push_back(std::move(*j));
  }
  return true;
}

bool Qmp::wait_event(const std::string& name) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    while (auto e = next_event()) {
      if (e->value("event", "") == name) return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    auto j = read_message(left);
    if (j && j->contains("event")) events_.push_back(std::move(*j));
  }
}

std::optional<nlohmann::json> Qmp::next_event() {
  if (events_.empty()) return std::nullopt;
  auto e = std::move(events_.front());
  events_.pop_front();
  return e;
}

}  // namespace pagelab::lab
