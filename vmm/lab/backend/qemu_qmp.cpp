#include "backend/qemu_qmp.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/core.h>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "pagelab/lab/backend/backend.hpp"
#include "pagelab/paging/printable.hpp"

namespace pagelab::lab {

namespace {

std::chrono::milliseconds until(std::chrono::steady_clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                               std::chrono::steady_clock::now());
}

}  // namespace

Qmp::Qmp(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {
  auto greeting = read_message(std::chrono::steady_clock::now() + timeout_);
  if (!greeting || !greeting->contains("QMP")) {
    throw std::runtime_error("QEMU did not send a QMP greeting");
  }
  execute("qmp_capabilities");
}

bool Qmp::fill(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  const int n = ::poll(&p, 1, static_cast<int>(std::max<long>(timeout.count(), 0)));
  if (n <= 0) return n == 0 || errno == EINTR;
  char chunk[4096];
  const ssize_t got = ::read(fd_, chunk, sizeof chunk);
  if (got <= 0) return false;
  buffer_.append(chunk, static_cast<std::size_t>(got));
  bytes_read_ += static_cast<std::size_t>(got);
  if (buffer_.find('\n') == std::string::npos && buffer_.size() > MaxLineBytes) {
    throw std::runtime_error(
        fmt::format("QEMU sent a QMP line longer than {} bytes (the limit)", MaxLineBytes));
  }
  return true;
}

std::optional<nlohmann::json> Qmp::read_message(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
      auto line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (line.size() > MaxLineBytes) {
        throw std::runtime_error(
            fmt::format("QEMU sent a QMP line longer than {} bytes (the limit)", MaxLineBytes));
      }
      // QEMU's output is untrusted like the guest's: a bad line is an error, not a crash.
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        throw std::runtime_error(
            fmt::format("QEMU sent a malformed QMP line: {}", paging::printable(line)));
      }
      return j;
    }
    const auto left = until(deadline);
    if (left.count() <= 0) return std::nullopt;
    if (!fill(left)) throw BackendGone("QEMU closed its QMP connection");
  }
}

void Qmp::queue_event(nlohmann::json event) {
  if (events_.size() >= MaxQueuedEvents) {
    events_.pop_front();
    ++dropped_events_;
  }
  events_.push_back(std::move(event));
}

nlohmann::json Qmp::execute(const std::string& command, const nlohmann::json& arguments) {
  nlohmann::json request{{"execute", command}};
  if (!arguments.empty()) request["arguments"] = arguments;
  const auto text = request.dump() + "\n";
  // send() with MSG_NOSIGNAL: a QEMU that died must be an error here, not a SIGPIPE
  // that kills pagelab with its unflushed report.
  for (std::size_t sent = 0; sent < text.size();) {
    const ssize_t n = ::send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw BackendGone(fmt::format("QMP {}: write failed: {}", command, std::strerror(errno)));
    }
    sent += static_cast<std::size_t>(n);
  }
  // One deadline for the whole answer: events arriving meanwhile do not extend it.
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  bytes_read_ = buffer_.size();
  for (;;) {
    if (bytes_read_ > MaxBytesPerCommand) {
      throw std::runtime_error(
          fmt::format("QMP {}: QEMU sent more than {} bytes without answering (the limit)", command,
                      MaxBytesPerCommand));
    }
    auto reply = read_message(deadline);
    if (!reply) {
      throw std::runtime_error(
          fmt::format("QMP {}: no answer from QEMU within {} ms", command, timeout_.count()));
    }
    if (reply->contains("event")) {
      queue_event(std::move(*reply));
      continue;
    }
    if (auto e = reply->find("error"); e != reply->end()) {
      const auto desc =
          e->is_object() ? e->value("desc", nlohmann::json("error")) : nlohmann::json("error");
      throw std::runtime_error(
          fmt::format("QMP {}: {}", command,
                      paging::printable(desc.is_string() ? desc.get<std::string>() : desc.dump())));
    }
    return reply->value("return", nlohmann::json::object());
  }
}

bool Qmp::pump() {
  bytes_read_ = 0;
  while (bytes_read_ < MaxBytesPerCommand) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) break;
    if (!fill(std::chrono::milliseconds(0))) return false;
  }
  while (buffer_.find('\n') != std::string::npos) {
    auto j = read_message(std::chrono::steady_clock::now());
    if (j && j->contains("event")) queue_event(std::move(*j));
  }
  return true;
}

bool Qmp::wait_event(const std::string& name) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    while (auto e = next_event()) {
      const auto it = e->find("event");
      if (it != e->end() && it->is_string() && it->get<std::string>() == name) return true;
    }
    if (until(deadline).count() <= 0) return false;
    auto j = read_message(deadline);
    if (j && j->contains("event")) queue_event(std::move(*j));
  }
}

std::optional<nlohmann::json> Qmp::next_event() {
  if (events_.empty()) return std::nullopt;
  auto e = std::move(events_.front());
  events_.pop_front();
  return e;
}

}  // namespace pagelab::lab
