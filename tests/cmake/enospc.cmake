# A full disk (tests/cli/test_enospc.py): an LD_PRELOAD shim that makes writes
# under a directory fail with ENOSPC, and where mount works, a real small tmpfs.
add_library(enospc_shim SHARED ${CMAKE_CURRENT_SOURCE_DIR}/tools/enospc_shim.c)
target_link_libraries(enospc_shim PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(enospc_shim PROPERTIES PREFIX "" C_VISIBILITY_PRESET default)
# Never sanitized: it is preloaded into every program a build runs (rustc's
# linker too), and those do not carry ASan's runtime.
target_compile_options(enospc_shim PRIVATE -fno-sanitize=all)
target_link_options(enospc_shim PRIVATE -fno-sanitize=all)
kache_py_tests(cli/test_enospc.py NAME cli_enospc_{class}.{test} TIMEOUT 300
    ENVIRONMENT KACHED=$<TARGET_FILE:kached> KACHE=$<TARGET_FILE:kache>
                FIXTURE=$<TARGET_FILE:index_fixture> POKE=$<TARGET_FILE:proto_poke>
                SHIM=$<TARGET_FILE:enospc_shim>)
