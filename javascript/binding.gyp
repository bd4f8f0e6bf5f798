{
  "targets": [{
    "target_name": "heron_node",
    "sources": ["src/addon.c", "src/abi_gen.c"],
    "include_dirs": ["<!(node scripts/find-heron.js include)"],
    "libraries": [
      "-L<!(node scripts/find-heron.js libdir)",
      "-lheron",
      "-Wl,-rpath,<!(node scripts/find-heron.js libdir)"
    ],
    "cflags": ["-std=gnu11", "-Wall", "-Wno-unused-label"]
  }]
}
