{
  "targets": [
    {
      "target_name": "anneal_torch",
      "sources": ["src/native/addon.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/libtorch.mjs include)"
      ],
      "libraries": ["<!@(node scripts/libtorch.mjs libs)"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-fopenmp", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "<!@(node scripts/libtorch.mjs defines)"]
    }
  ]
}
