{
  "targets": [
    {
      "target_name": "vtpmd_native",
      "sources": ["vtpmd_native.c", "connection.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
