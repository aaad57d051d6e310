# node-gyp's entry point, and nothing more: it lists no sources and no flags. The one build is
# CMakeLists.txt (cmake-js); this hands it node-gyp's `rebuild`, which is what runs when
#   - `npm install dpsm-native` finds no prebuilt binary for the host (the package's install script,
#     node-gyp-build, falls back to `node-gyp rebuild`), and
#   - prebuildify packages a binary (it drives `node-gyp rebuild` too),
# and it puts the addon at build/Release/dpsm_native.node, where node-gyp-build looks.
# Set DPSM_CUDA=ON in the environment to build the CUDA kernels this way too. The testing addon (probes for
# test/ and bench/) is not built here: an installed package never needs it.
{
  "targets": [
    {
      "target_name": "dpsm_native",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake_js_compile",
          "inputs": ["CMakeLists.txt"],
          "outputs": ["<(PRODUCT_DIR)/dpsm_native.node"],
          "action": [
            "node", "<!(node -p \"require.resolve('cmake-js/bin/cmake-js')\")", "compile",
            "--out", "<(INTERMEDIATE_DIR)/cmake",
            "--CDDPSM_OUTPUT_DIR=<(PRODUCT_DIR)",
            "--CDDPSM_TESTING=OFF",
            "--CDDPSM_CUDA=<!(node -p \"process.env.DPSM_CUDA || 'OFF'\")"
          ]
        }
      ]
    }
  ]
}
