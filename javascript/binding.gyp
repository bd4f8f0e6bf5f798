{
  "targets": [{
    "target_name": "heron_node",
    "sources": ["src/addon.c", "src/abi_gen.c", "src/fast.cc"],
    "include_dirs": ["<!(node scripts/find-heron.js include)"],
    "libraries": [
      "-L<!(node scripts/find-heron.js libdir)",
      "-lheron",
      "-Wl,-rpath,<!(node scripts/find-heron.js libdir)"
    ],
    "cflags": ["-Wall", "-Wno-unused-label"],
    "cflags_c": ["-std=gnu11"],
    "cflags_cc": ["-std=gnu++17"]
  }]
}
