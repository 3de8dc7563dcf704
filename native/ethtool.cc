// GRO and LRO through SIOCETHTOOL's per-feature commands (ETHTOOL_GGRO/SGRO, and LRO as
// ETH_FLAG_LRO in ETHTOOL_GFLAGS/SFLAGS). The kernel maps both onto netdev features
// (NETIF_F_GRO, NETIF_F_LRO), so this works for every driver without the ethtool binary.
#include "ethtool.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"

namespace weir {
namespace {

// One ethtool_value command on ifname; returns 0 or errno.
int EthtoolValue(const std::string& ifname, uint32_t cmd, uint32_t* data) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct ethtool_value ev;
  ev.cmd = cmd;
  ev.data = *data;
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  ifr.ifr_data = reinterpret_cast<char*>(&ev);
  int err = ioctl(fd, SIOCETHTOOL, &ifr) == 0 ? 0 : errno;
  close(fd);
  if (err == 0) *data = ev.data;
  return err;
}

bool IfnameArg(const Napi::CallbackInfo& info, std::string* out) {
  if (info.Length() < 1 || !info[0].IsString()) return false;
  *out = info[0].As<Napi::String>().Utf8Value();
  return !out->empty() && out->size() < IFNAMSIZ;
}

}  // namespace

Napi::Value EthtoolGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname;
  if (!IfnameArg(info, &ifname)) {
    Napi::TypeError::New(env, "ethtoolGet(ifname: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t gro = 0, flags = 0;
  if (int err = EthtoolValue(ifname, ETHTOOL_GGRO, &gro)) return ThrowSys(env, "ethtool get GRO on", ifname, err, nullptr);
  if (int err = EthtoolValue(ifname, ETHTOOL_GFLAGS, &flags)) return ThrowSys(env, "ethtool get flags on", ifname, err, nullptr);
  Napi::Object o = Napi::Object::New(env);
  o.Set("gro", Napi::Boolean::New(env, gro != 0));
  o.Set("lro", Napi::Boolean::New(env, (flags & ETH_FLAG_LRO) != 0));
  return o;
}

Napi::Value EthtoolSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname;
  if (!IfnameArg(info, &ifname) || info.Length() < 2 || !info[1].IsObject()) {
    Napi::TypeError::New(env, "ethtoolSet(ifname: string, { gro?, lro? })").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object want = info[1].As<Napi::Object>();
  if (want.Has("gro") && want.Get("gro").IsBoolean()) {
    uint32_t v = want.Get("gro").As<Napi::Boolean>().Value() ? 1 : 0;
    if (int err = EthtoolValue(ifname, ETHTOOL_SGRO, &v)) return ThrowSys(env, "ethtool set GRO on", ifname, err, "CAP_NET_ADMIN");
  }
  if (want.Has("lro") && want.Get("lro").IsBoolean()) {
    bool on = want.Get("lro").As<Napi::Boolean>().Value();
    uint32_t flags = 0;
    if (int err = EthtoolValue(ifname, ETHTOOL_GFLAGS, &flags)) return ThrowSys(env, "ethtool get flags on", ifname, err, nullptr);
    if (((flags & ETH_FLAG_LRO) != 0) != on) {
      flags = on ? (flags | ETH_FLAG_LRO) : (flags & ~static_cast<uint32_t>(ETH_FLAG_LRO));
      if (int err = EthtoolValue(ifname, ETHTOOL_SFLAGS, &flags)) return ThrowSys(env, "ethtool set LRO on", ifname, err, "CAP_NET_ADMIN");
    }
  }
  return env.Undefined();
}

}  // namespace weir
