// RxSource: what a data-plane worker waits on. Every receiving socket gives poll() a descriptor;
// an mmap ring also answers "is a frame waiting?" from shared memory, without a syscall, so a
// short busy-poll window costs no system calls (native/poller.cc).
#pragma once

namespace weir {

class RxSource {
 public:
  virtual ~RxSource() = default;
  // The descriptor poll() waits on (POLLIN); < 0 when closed (poll skips it).
  virtual int WaitFd() const = 0;
  // True when a received frame is waiting in user-visible memory. Sources without a ring
  // (TUN, raw sockets) answer false and are only woken through poll().
  virtual bool RxReady() const { return false; }
};

}  // namespace weir
