// setNetns(fd): moves the calling thread into another network namespace (lab tests, benches,
// and weir instances that serve a namespace other than their own).
#pragma once

#include <napi.h>

namespace weir {
Napi::Value SetNetns(const Napi::CallbackInfo& info);
}
