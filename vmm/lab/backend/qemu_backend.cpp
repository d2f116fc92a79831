#include "pagelab/lab/backend/qemu_backend.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/core.h>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "backend/qemu_process.hpp"
#include "backend/qemu_qmp.hpp"
#include "backend/qemu_registers.hpp"
#include "pagelab/kvm/file_descriptor.hpp"
#include "pagelab/paging/printable.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {

using kvm::FileDescriptor;
using paging::GuestPhys;

namespace {

// The BIOS image: QEMU maps it so that its last 64 KiB end at 4 GiB and again below
// 1 MiB; the CPU starts at F000:FFF0, i.e. offset 0xFFF0 of the image (SDM vol. 3
// §9.1.4). There we far-jump to the probe, as a boot loader would.
constexpr std::size_t kBiosSize = 64 * 1024;
constexpr std::size_t kResetVectorOffset = 0xFFF0;
constexpr std::uint8_t kJmpFarPtr16 = 0xEA;  // JMP ptr16:16
constexpr std::uint8_t kHlt = 0xF4;
constexpr std::size_t kMiB = 1 << 20;
constexpr auto kQmpTimeout = std::chrono::milliseconds(5000);
constexpr auto kQuitGrace = std::chrono::milliseconds(2000);
// Most commands finish in microseconds under TCG: look at the mailbox for this long
// before sleeping in poll() (which costs a wakeup of 5-25 us).
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(30);

FileDescriptor check_fd(int fd, const char* what) {
  if (fd < 0) throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
  return FileDescriptor(fd);
}

FileDescriptor memfd(const char* name, std::size_t size) {
  auto fd = check_fd(memfd_create(name, MFD_CLOEXEC), "memfd_create");
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    throw std::runtime_error(fmt::format("ftruncate {}: {}", name, std::strerror(errno)));
  }
  return fd;
}

FileDescriptor bios_image() {
  auto fd = memfd("pagelab-bios", kBiosSize);
  std::vector<std::uint8_t> image(kBiosSize, kHlt);
  const std::array<std::uint8_t, 5> jump{kJmpFarPtr16, PROBE_LOAD_GPA & 0xff,
                                         (PROBE_LOAD_GPA >> 8) & 0xff, 0, 0};  // 0000:8000
  std::copy(jump.begin(), jump.end(), image.begin() + kResetVectorOffset);
  if (pwrite(fd.get(), image.data(), image.size(), 0) != static_cast<ssize_t>(image.size())) {
    throw std::runtime_error(fmt::format("writing the BIOS image: {}", std::strerror(errno)));
  }
  return fd;
}

std::string fd_path(int fd) {
  return fmt::format("/proc/self/fd/{}", fd);
}

// Reads what is there (non-blocking fd), at most `limit` bytes: a guest that floods
// the debugcon port or a QEMU that floods its stderr cannot keep us here.
std::string drain(int fd, std::size_t limit = 64 * 1024) {
  std::string text;
  char chunk[4096];
  ssize_t got = 0;
  while (text.size() < limit && (got = ::read(fd, chunk, sizeof chunk)) > 0) {
    text.append(chunk, static_cast<size_t>(got));
  }
  return text;
}

// QEMU's stderr as one bounded line: its last words, not a flood nor a terminal escape.
std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return paging::printable(text, 300);
}

// The "event" member of a QMP event, whatever QEMU put there.
std::string event_name(const nlohmann::json& event) {
  const auto it = event.find("event");
  return it != event.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::atomic<unsigned> g_instances{0};

}  // namespace

std::string qemu_binary_name() {
  const char* env = std::getenv("PAGELAB_QEMU");
  return env != nullptr && *env != '\0' ? env : "qemu-system-x86_64";
}

std::optional<std::string> find_qemu_binary() {
  const auto name = qemu_binary_name();
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const auto candidate = (std::filesystem::path(dir) / name).string();
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

struct QemuBackend::State {
  std::string name;
  FileDescriptor ram_fd, bios_fd, doorbell_read, doorbell_write, qmp_host, qmp_child, err_read,
      err_write;
  kvm::Mapping ram_map;
  std::optional<GuestRam> ram;
  std::unique_ptr<QemuProcess> process;
  std::unique_ptr<Qmp> qmp;
  std::uint64_t round_trips = 0;
  std::uint64_t nmis = 0;
  bool stopped = true;  // -S: nothing runs before start()
  // The CPU the driving thread shares with QEMU (share_cpu()), and the process kept there.
  std::optional<unsigned> cpu;
  pid_t kept_pid = -1;

  // Once QEMU closed its end: "QEMU exited (signal 9)" and its last words. It is
  // reaped first (a killed process may take a moment to become a zombie).
  std::string died_text() {
    process->reap(kQuitGrace);
    auto status = process->poll_exit().value_or("still running");
    auto err = one_line(drain(err_read.get(), 4096));
    return fmt::format("QEMU {} ({}){}{}", status, name, err.empty() ? "" : ": ", err);
  }

  // A QMP command; a QEMU that is gone is reported with how it ended.
  nlohmann::json execute(const std::string& command,
                         const nlohmann::json& arguments = nlohmann::json::object()) {
    try {
      return qmp->execute(command, arguments);
    } catch (const BackendGone&) {
      throw BackendGone(died_text());
    }
  }
};

QemuBackend::QemuBackend(const QemuOptions& options) : s_(std::make_unique<State>()) {
  const auto binary = find_qemu_binary();
  if (!binary) {
    throw std::runtime_error(
        fmt::format("{} is not installed (looked on $PATH; set PAGELAB_QEMU "
                    "to its path)",
                    qemu_binary_name()));
  }
  if (options.memory_bytes == 0 || options.memory_bytes % kMiB != 0) {
    throw std::invalid_argument("QEMU guest RAM must be a non-zero multiple of 1 MiB");
  }
  auto& s = *s_;
  s.name =
      options.name.empty() ? fmt::format("pagelab-{}-{}", getpid(), g_instances++) : options.name;
  s.ram_fd = memfd("pagelab-ram", options.memory_bytes);
  void* p =
      mmap(nullptr, options.memory_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s.ram_fd.get(), 0);
  if (p == MAP_FAILED) throw std::runtime_error(fmt::format("mmap: {}", std::strerror(errno)));
  s.ram_map = kvm::Mapping(p, options.memory_bytes);
  s.ram.emplace(GuestPhys(0), static_cast<std::uint8_t*>(p), options.memory_bytes);
  s.bios_fd = bios_image();

  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
  s.doorbell_read.reset(fds[0]);
  s.doorbell_write.reset(fds[1]);
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  s.err_read.reset(fds[0]);
  s.err_write.reset(fds[1]);
  fcntl(s.err_read.get(), F_SETFL, O_NONBLOCK);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error("socketpair failed");
  }
  s.qmp_host.reset(fds[0]);
  s.qmp_child.reset(fds[1]);

  const auto mib = options.memory_bytes / kMiB;
  const std::vector<std::string> args{
      // No local APIC: QMP's inject-nmi then goes straight to the CPU. With one, it goes
      // through LVT LINT1, masked from reset, and the NMI that wakes a halted probe
      // (MB_WAITING) would be dropped. Paging does not care.
      "-name", fmt::format("guest={}", s.name), "-accel", "tcg", "-cpu", "max,-apic",
      // One vCPU, but room for two: TCG translates a machine that can have one vCPU only
      // without atomics or fences (a guest XCHG is a load and a store, MFENCE nothing),
      // as no other vCPU could tell. We can: the probe's wait (probe_abi.h) is a
      // store-then-load handshake with this process, and without the XCHG's fence the
      // probe could miss MB_SEQ while we missed its announcement, and halt for good
      // (seen under load: "wait word 1, NMIs taken 6, sent 6"; 0 ms of QEMU's CPU).
      "-smp", "1,maxcpus=2", "-M",
      "microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=off,acpi=off,"
      "memory-backend=ram",
      "-m", fmt::format("{}M", mib), "-object",
      fmt::format("memory-backend-file,id=ram,size={}M,share=on,mem-path={}", mib,
                  fd_path(s.ram_fd.get())),
      "-bios", fd_path(s.bios_fd.get()), "-nodefaults", "-no-user-config", "-display", "none",
      "-S",  // the probe is written into RAM before the first instruction runs
      "-chardev", fmt::format("file,id=doorbell,path={}", fd_path(s.doorbell_write.get())),
      "-device", fmt::format("isa-debugcon,iobase={:#x},chardev=doorbell", PROBE_PORT_DOORBELL),
      "-chardev", "stdio,id=qmp,signal=off", "-mon", "chardev=qmp,mode=control",
      // A triple fault pauses with the registers kept, and is announced over QMP.
      "-action", "reboot=shutdown,shutdown=pause"};
  s.process = std::make_unique<QemuProcess>(
      *binary, args, s.qmp_child.get(), s.err_write.get(),
      std::vector<int>{s.ram_fd.get(), s.bios_fd.get(), s.doorbell_write.get()});
  s.qmp_child.reset();
  s.err_write.reset();
  s.doorbell_write.reset();  // QEMU holds the only write end now
  try {
    s.qmp = std::make_unique<Qmp>(s.qmp_host.get(), kQmpTimeout);
  } catch (const std::exception& e) {
    s.process->reap(kQuitGrace);
    throw std::runtime_error(fmt::format("starting {}: {} ({})", *binary, s.died_text(), e.what()));
  }
}

QemuBackend::~QemuBackend() {
  if (s_->qmp) {
    try {
      s_->qmp->execute("quit");
    } catch (const std::exception&) {
      // It may be gone already; reap() below settles it either way.
    }
  }
  s_->process->reap(kQuitGrace);
}

GuestRam& QemuBackend::ram() {
  return *s_->ram;
}

int QemuBackend::pid() const {
  return s_->process->pid();
}

const std::string& QemuBackend::process_name() const {
  return s_->name;
}

std::chrono::nanoseconds QemuBackend::outside_cpu_time() const {
  return s_->process ? s_->process->cpu_time().value_or(std::chrono::nanoseconds{0})
                     : std::chrono::nanoseconds{0};
}

std::uint64_t QemuBackend::round_trips() const {
  return s_->round_trips;
}

void QemuBackend::start() {
  // The probe may halt while it waits: we wake it with an NMI (probe_abi.h, MB_WAITING).
  s_->ram->write<std::uint32_t>(GuestPhys(PROBE_MAILBOX_GPA + MB_HALT_OK), 1);
  s_->execute("cont");
  s_->stopped = false;
}

// QEMU's own system reset: the CPU back at F000:FFF0 in its power-on state, RAM (the
// memfd) untouched. It is stopped first, so that it cannot run the BIOS into a probe
// that is being rewritten; a reset from a stopped state stays stopped (prelaunch).
void QemuBackend::reset() {
  auto& s = *s_;
  if (!s.stopped) s.execute("stop");
  s.stopped = true;
  // "-action reboot=shutdown" (triple faults are reported, not rebooted) would turn
  // this reset into a shutdown too; it is lifted for the reset only.
  s.execute("set-action", {{"reboot", "reset"}});
  s.execute("system_reset");
  // The reset itself happens in QEMU's main loop after the command has answered.
  if (!s.qmp->wait_event("RESET")) {
    throw std::runtime_error(
        fmt::format("QEMU ({}) sent no RESET event within {} ms of "
                    "system_reset",
                    s.name, kQmpTimeout.count()));
  }
  s.execute("set-action", {{"reboot", "shutdown"}});
  drain(s.doorbell_read.get());
}

std::optional<BackendStop> QemuBackend::run_until_done(std::uint32_t seq, const Watchdog& watchdog,
                                                       const DoorbellHandler& on_doorbell) {
  auto& s = *s_;
  const GuestPhys done(PROBE_MAILBOX_GPA + MB_DONE_SEQ);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + watchdog.wall;
  // The whole process's CPU time stands for the vCPU's: QEMU's other threads sleep
  // while the guest runs. (Plain values below, not optionals: g++ 12 -O2 warns,
  // falsely, that an optional duration may be used uninitialised.)
  const auto first_cpu = watchdog.busy ? s.process->cpu_time() : std::nullopt;
  const bool busy_applies = first_cpu.has_value();
  const std::chrono::nanoseconds cpu_at_start = first_cpu.value_or(std::chrono::nanoseconds{});
  const std::chrono::nanoseconds busy_budget = watchdog.busy.value_or(std::chrono::milliseconds{});
  ++s.round_trips;
  wake_if_halted();
  // The probe writes MB_DONE_SEQ before its OUT, so the mailbox is the truth; the
  // debugcon byte only wakes us up. A sync point answered is one more round trip, and
  // the spin starts again: the probe spins there, and the next one is usually
  // microseconds away.
  auto synced = [&] {
    if (!on_doorbell || !on_doorbell()) return false;
    ++s.round_trips;
    return true;
  };
  auto spin_until_done = [&] {
    for (auto from = std::chrono::steady_clock::now();
         std::chrono::steady_clock::now() - from < kSpinBeforeSleep;) {
      if (s.ram->read<std::uint32_t>(done) == seq) {
        // Keep the pipe from filling up: a full pipe would block QEMU's vCPU.
        drain(s.doorbell_read.get());
        return true;
      }
      if (synced()) from = std::chrono::steady_clock::now();
    }
    return false;
  };
  // Spinning on the CPU QEMU shares would only keep the guest from running.
  const bool spin = !s.cpu.has_value();
  if (spin && spin_until_done()) return std::nullopt;
  // From here on the wait sleeps: what QEMU used of the CPU meanwhile tells a hang
  // report apart (a guest that spun, a halted one, or QEMU that got no CPU at all).
  const auto sleep_start = std::chrono::steady_clock::now();
  const auto cpu_at_sleep = s.process ? s.process->cpu_time() : std::nullopt;
  for (;;) {
    if (s.ram->read<std::uint32_t>(done) == seq) {
      drain(s.doorbell_read.get());
      return std::nullopt;
    }
    if (synced()) {
      if (spin && spin_until_done()) return std::nullopt;
      continue;
    }
    if (!s.qmp->pump()) {
      return BackendStop{kvm::OtherExit{}, s.died_text()};
    }
    while (auto event = s.qmp->next_event()) {
      if (event_name(*event) == "SHUTDOWN") {
        const auto data = event->find("data");
        const auto reason = data != event->end() && data->is_object() && data->contains("reason") &&
                                    (*data)["reason"].is_string()
                                ? (*data)["reason"].get<std::string>()
                                : std::string();
        s.stopped = true;
        return BackendStop{kvm::ShutdownExit{},
                           fmt::format("QMP SHUTDOWN event (reason {}): the guest reset itself, "
                                       "e.g. by a triple fault; QEMU paused it",
                                       reason)};
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      const auto cpu_now = s.process ? s.process->cpu_time() : std::nullopt;
      s.execute("stop");
      s.stopped = true;
      const auto ms = [](auto d) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
      };
      const auto used = cpu_at_sleep && cpu_now
                            ? fmt::format(" (QEMU used {} ms of CPU in the last {} ms)",
                                          ms(*cpu_now - *cpu_at_sleep),
                                          ms(std::chrono::steady_clock::now() - sleep_start))
                            : std::string();
      return BackendStop{
          kvm::HangExit{watchdog.wall},
          fmt::format("hang: no doorbell within {} ms{}; probe's wait word {}, NMIs taken {}, "
                      "sent {}; QEMU stopped over QMP",
                      watchdog.wall.count(), used, waiting_word().load(),
                      s.ram->read<std::uint32_t>(GuestPhys(PROBE_MAILBOX_GPA + MB_NMI_COUNT)),
                      s.nmis)};
    }
    if (busy_applies) {
      const auto now = s.process->cpu_time().value_or(cpu_at_start);
      if (now - cpu_at_start >= busy_budget) {
        s.execute("stop");
        s.stopped = true;
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
        return BackendStop{
            kvm::HangExit{waited},
            fmt::format(
                "hang: QEMU spent {} ms of CPU time ({} ms waited) without a doorbell; "
                "QEMU stopped over QMP",
                std::chrono::duration_cast<std::chrono::milliseconds>(now - cpu_at_start).count(),
                waited.count())};
      }
    }
    // No second NMI for a probe that still looks asleep: the probe's handler restarts
    // a wait it interrupted before the HLT, and a spare NMI would land in whatever the
    // probe does next (in real mode, as an exception).
    std::array<pollfd, 2> fds{pollfd{s.doorbell_read.get(), POLLIN, 0},
                              pollfd{s.qmp->fd(), POLLIN, 0}};
    ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long>(left.count() + 1, 100)));
    drain(s.doorbell_read.get());
  }
}

void QemuBackend::share_cpu(std::optional<unsigned> cpu) {
  auto& s = *s_;
  if (!s.process || (cpu == s.cpu && s.kept_pid == s.process->pid())) return;
  // A refusal leaves QEMU where the kernel put it, and the host still does not spin:
  // slower, not wrong.
  (void)s.process->keep_on(cpu);
  s.cpu = cpu;
  s.kept_pid = s.process->pid();
}

std::atomic_ref<std::uint32_t> QemuBackend::waiting_word() {
  auto* word = s_->ram->host(GuestPhys(PROBE_MAILBOX_GPA + MB_WAITING), sizeof(std::uint32_t));
  return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(word));
}

// Called once MB_SEQ is bumped. The probe announced a HLT: take the announcement
// (exactly one of us does) and wake it. A probe that is still spinning sees MB_SEQ.
void QemuBackend::wake_if_halted() {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // MB_SEQ before MB_WAITING
  std::uint32_t expected = PROBE_WAIT_HALTED;
  if (waiting_word().compare_exchange_strong(expected, PROBE_WAIT_WOKEN)) send_nmi();
}

void QemuBackend::send_nmi() {
  s_->execute("inject-nmi");
  ++s_->nmis;
}

std::uint64_t QemuBackend::wake_ups() const {
  return s_->nmis;
}

MachineRegisters QemuBackend::registers() {
  if (s_->process->poll_exit()) throw BackendGone(s_->died_text());
  const auto text = s_->execute("human-monitor-command", {{"command-line", "info registers"}});
  return parse_qemu_registers(text.is_string() ? text.get<std::string>() : std::string());
}

}  // namespace pagelab::lab
