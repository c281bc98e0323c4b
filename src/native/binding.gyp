{
  "targets": [
    {
      "target_name": "vtpmd_native",
      "sources": ["vtpmd_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
