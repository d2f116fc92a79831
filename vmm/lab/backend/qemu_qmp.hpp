#pragma once
// A QMP client (QEMU Machine Protocol: one JSON object per line) on a socket.
// Commands are synchronous; events that arrive meanwhile are queued. QEMU is untrusted
// like the guest: what is read from it is bounded (line length, queued events, bytes
// per command) and every wait has a deadline.
#include <chrono>
#include <cstddef>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pagelab::lab {

class Qmp {
 public:
  // Far above anything QEMU sends (`info registers` is ~3 KiB), far below harm.
  static constexpr std::size_t MaxLineBytes = 1 << 20;
  static constexpr std::size_t MaxQueuedEvents = 1024;
  static constexpr std::size_t MaxBytesPerCommand = 16 << 20;

  // Reads the greeting and negotiates capabilities.
  Qmp(int fd, std::chrono::milliseconds timeout);

  // Runs a command; returns its "return" value. Throws std::runtime_error with
  // QEMU's error description, when no answer comes within the timeout (however many
  // events arrive meanwhile), or when QEMU sends more than the bounds above.
  nlohmann::json execute(const std::string& command,
                         const nlohmann::json& arguments = nlohmann::json::object());
  // Reads whatever has arrived without blocking (at most MaxBytesPerCommand); false
  // when QEMU closed the socket.
  bool pump();
  // The oldest queued event, if any.
  std::optional<nlohmann::json> next_event();
  // Waits up to the QMP timeout for the event `name`, dropping the events before it;
  // false when it does not come. Throws when QEMU closes the connection.
  bool wait_event(const std::string& name);
  [[nodiscard]] int fd() const { return fd_; }
  // Events dropped because the queue was full (a flooding QEMU).
  [[nodiscard]] std::size_t dropped_events() const { return dropped_events_; }

 private:
  std::optional<nlohmann::json> read_message(std::chrono::steady_clock::time_point deadline);
  bool fill(std::chrono::milliseconds timeout);
  void queue_event(nlohmann::json event);

  int fd_;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
  std::size_t bytes_read_ = 0;  // since the current command was sent
  std::deque<nlohmann::json> events_;
  std::size_t dropped_events_ = 0;
};

}  // namespace pagelab::lab
