{
  "targets": [
    {
      "target_name": "sockdiag",
      "sources": ["sockdiag.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
