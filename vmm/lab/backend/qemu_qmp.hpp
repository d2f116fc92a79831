#pragma once
// A QMP client (QEMU Machine Protocol: one JSON object per line) on a socket.
// Commands are synchronous; events that arrive meanwhile are queued.
#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pagelab::lab {

class Qmp {
 public:
  // Reads the greeting and negotiates capabilities.
  Qmp(int fd, std::chrono::milliseconds timeout);

  // Runs a command; returns its "return" value. Throws std::runtime_error with
  // QEMU's error description, or when no answer comes within the timeout.
  nlohmann::json execute(const std::string& command,
                         const nlohmann::json& arguments = nlohmann::json::object());
  // Reads whatever has arrived without blocking; false when QEMU closed the socket.
  bool pump();
  // The oldest queued event, if any.
  std::optional<nlohmann::json> next_event();
  // Waits up to the QMP timeout for the event `name`, dropping the events before it;
  // false when it does not come. Throws when QEMU closes the connection.
  bool wait_event(const std::string& name);
  [[nodiscard]] int fd() const { return fd_; }

 private:
  std::optional<nlohmann::json> read_message(std::chrono::milliseconds timeout);
  bool fill(std::chrono::milliseconds timeout);

  int fd_;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
  std::deque<nlohmann::json> events_;
};

}  // namespace pagelab::lab
