// sched_setscheduler(0, …) and setpriority(PRIO_PROCESS, gettid(), …) act on the calling thread
// only (Linux threads are tasks with their own policy and nice value), so a worker thread sets
// its own scheduling and leaves the main thread (control socket, BGP, health) as it was.
#include "thread_sched.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"

namespace weir {

Napi::Value SetThreadScheduling(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "setThreadScheduling({ policy, priority?, nice? })").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  std::string policy = o.Has("policy") && o.Get("policy").IsString() ? o.Get("policy").As<Napi::String>().Utf8Value() : "other";
  int priority = o.Has("priority") && o.Get("priority").IsNumber() ? o.Get("priority").As<Napi::Number>().Int32Value() : 0;
  int nice = o.Has("nice") && o.Get("nice").IsNumber() ? o.Get("nice").As<Napi::Number>().Int32Value() : 0;
  int pol;
  if (policy == "other") {
    pol = SCHED_OTHER;
    priority = 0;
  } else if (policy == "fifo" || policy == "rr") {
    pol = policy == "fifo" ? SCHED_FIFO : SCHED_RR;
    if (priority < 1 || priority > 99) {
      Napi::RangeError::New(env, "setThreadScheduling: priority must be 1..99 for fifo and rr").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  } else {
    Napi::TypeError::New(env, "setThreadScheduling: policy must be other, fifo or rr").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (nice < -20 || nice > 19) {
    Napi::RangeError::New(env, "setThreadScheduling: nice must be -20..19").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct sched_param sp;
  sp.sched_priority = priority;
  // SCHED_RESET_ON_FORK: a process this thread might start does not inherit a real-time policy.
  if (sched_setscheduler(0, pol | SCHED_RESET_ON_FORK, &sp) != 0) return ThrowSys(env, "sched_setscheduler", policy, errno, "CAP_SYS_NICE");
  pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (pol == SCHED_OTHER && setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice) != 0) {
    return ThrowSys(env, "setpriority", "nice " + std::to_string(nice), errno, "CAP_SYS_NICE");
  }
  return env.Undefined();
}

}  // namespace weir
