{
  "targets": [
    {
      "target_name": "weir_native",
      "sources": [
        "native/addon.cc", "native/af_packet.cc", "native/af_xdp.cc", "native/batch.cc", "native/bfd.cc", "native/bgp_native.cc", "native/caps.cc", "native/errors.cc", "native/ethtool.cc",
        "native/netns.cc", "native/poller.cc", "native/raw_socket.cc", "native/readiness.cc", "native/sd_notify.cc", "native/tcp_md5.cc", "native/thread_sched.cc", "native/tun.cc", "native/xdp_prog.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
