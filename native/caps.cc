// Capabilities are per thread on Linux: capset(2) changes only the calling thread, and Node has
// many (V8 platform workers, the libuv pool, data-plane workers, the BFD thread). So the new sets
// are applied by every thread itself: each one gets a real-time signal whose handler makes the
// raw capset syscall (async-signal-safe) and acknowledges, the way libcap's psx does for
// cap_set_proc. Threads started afterwards inherit the caller's reduced sets (clone(2)). No libcap:
// raw syscalls and <linux/capability.h> (capabilities(7), prctl(2) PR_CAPBSET_DROP / PR_CAP_AMBIENT).
#include "caps.h"

#include <dirent.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "errors.h"

namespace weir {
namespace {

// Not used by glibc (SIGRTMIN, SIGRTMIN+1), Node or libuv.
int CapSignal() { return SIGRTMAX - 3; }

__user_cap_header_struct g_hdr;
__user_cap_data_struct g_data[2];
uint64_t g_keep = 0;
int g_last = CAP_LAST_CAP;
bool g_bounding = false;  // drop from the bounding set too (needs CAP_SETPCAP)
std::atomic<int> g_acks{0};
std::atomic<int> g_failures{0};

// The calling thread's bounding set (it is per thread too), then its other sets. Only syscalls:
// safe in a signal handler. Returns false on a failure.
bool ReduceThisThread() {
  bool ok = true;
  for (int c = 0; g_bounding && c <= g_last; c++) {
    if ((g_keep >> c) & 1) continue;
    if (syscall(SYS_prctl, PR_CAPBSET_READ, c, 0, 0, 0) != 1) continue;
    if (syscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0) != 0) ok = false;
  }
  syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);  // EINVAL before Linux 4.3: none
  if (syscall(SYS_capset, &g_hdr, g_data) != 0) ok = false;
  return ok;
}

void OnCapSignal(int) {
  int saved = errno;
  if (!ReduceThisThread()) g_failures.fetch_add(1);
  g_acks.fetch_add(1);
  errno = saved;
}

int LastCap() {
  int last = CAP_LAST_CAP;
  FILE* f = fopen("/proc/sys/kernel/cap_last_cap", "r");
  if (f) {
    if (fscanf(f, "%d", &last) != 1) last = CAP_LAST_CAP;
    fclose(f);
  }
  return last > 63 ? 63 : last;
}

std::vector<pid_t> Threads() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc/self/task");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    out.push_back(static_cast<pid_t>(atoi(e->d_name)));
  }
  closedir(d);
  return out;
}

// True when thread t blocks signal sig (SigBlk in /proc/self/task/t/status): it would never run
// the handler, and waiting for its answer only delays the start.
bool Blocks(pid_t t, int sig) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", static_cast<int>(t));
  FILE* f = fopen(path, "re");
  if (!f) return false;
  char line[256];
  unsigned long long mask = 0;
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) found = sscanf(line, "SigBlk: %llx", &mask) == 1;
  fclose(f);
  return found && ((mask >> (sig - 1)) & 1) != 0;
}

std::string Hex(uint64_t v) {
  char b[20];
  snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

bool GetCaps(uint64_t* eff, uint64_t* perm) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2]{};
  if (syscall(SYS_capget, &h, d) != 0) return false;
  *eff = (static_cast<uint64_t>(d[1].effective) << 32) | d[0].effective;
  *perm = (static_cast<uint64_t>(d[1].permitted) << 32) | d[0].permitted;
  return true;
}

uint64_t Bounding(int last) {
  uint64_t b = 0;
  for (int c = 0; c <= last; c++)
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) b |= 1ULL << c;
  return b;
}

}  // namespace

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t eff, perm;
  if (!GetCaps(&eff, &perm)) return ThrowSys(env, "capget", "", errno, nullptr);
  Napi::Object o = Napi::Object::New(env);
  o.Set("effective", Hex(eff));
  o.Set("permitted", Hex(perm));
  o.Set("bounding", Hex(Bounding(LastCap())));
  return o;
}

Napi::Value DropCapabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "dropCapabilities(keep: number[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int last = LastCap();
  uint64_t keep = 0;
  Napi::Array a = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    int c = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : -1;
    if (c < 0 || c > last) {
      Napi::RangeError::New(env, "dropCapabilities: unknown capability number " + std::to_string(c)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    keep |= 1ULL << c;
  }
  uint64_t eff, perm;
  if (!GetCaps(&eff, &perm)) return ThrowSys(env, "capget", "", errno, nullptr);
  // Dropping from the bounding set needs CAP_SETPCAP (root has it, a unit's ambient set does
  // not); without it the bounding set stays: programs weir runs get caps only from it as root.
  g_bounding = ((eff >> CAP_SETPCAP) & 1) != 0;
  const uint64_t want = keep & perm;
  g_keep = keep;
  g_last = last;
  g_hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  g_data[0] = {static_cast<__u32>(want), static_cast<__u32>(want), 0};
  g_data[1] = {static_cast<__u32>(want >> 32), static_cast<__u32>(want >> 32), 0};
  g_acks = 0;
  g_failures = 0;

  struct sigaction sa {}, old {};
  sa.sa_handler = OnCapSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  const int sig = CapSignal();
  if (sigaction(sig, &sa, &old) != 0) return ThrowSys(env, "sigaction", "", errno, nullptr);
  const pid_t pid = getpid();
  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  std::set<pid_t> done{self};
  int sent = 0, blocked = 0;
  // Again until no new thread shows up: one started meanwhile by a thread not yet reduced.
  for (int round = 0; round < 10; round++) {
    int fresh = 0;
    for (pid_t t : Threads()) {
      if (done.count(t)) continue;
      done.insert(t);
      if (Blocks(t, sig)) {
        blocked++;
        continue;
      }
      if (syscall(SYS_tgkill, pid, t, sig) == 0) {
        sent++;
        fresh++;
      }
    }
    if (fresh == 0) break;
    // Wait (at most 1 s) for the handlers of the threads signalled.
    for (int i = 0; i < 5000 && g_acks.load() < sent; i++) {
      struct timespec ts {0, 200000};
      nanosleep(&ts, nullptr);
    }
  }
  const int unanswered = blocked + sent - g_acks.load();
  const bool ok = ReduceThisThread();
  const int e = errno;
  sigaction(sig, &old, nullptr);
  if (!ok) return ThrowSys(env, "capset", "", e, nullptr);
  Napi::Object o = Napi::Object::New(env);
  o.Set("threads", Napi::Number::New(env, sent + blocked + 1));
  // Threads that block every signal never answer (Node's SIGUSR1 inspector watchdog): they keep their sets.
  o.Set("failed", Napi::Number::New(env, g_failures.load() + unanswered));
  o.Set("effective", Hex(want));
  o.Set("bounding", Hex(Bounding(last)));
  return o;
}

}  // namespace weir
