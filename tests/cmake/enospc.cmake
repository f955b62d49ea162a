# A full disk (tests/cli/test_enospc.py): an LD_PRELOAD shim that makes writes
# under a directory fail with ENOSPC, and where mount works, a real small tmpfs.
add_library(enospc_shim SHARED ${CMAKE_CURRENT_SOURCE_DIR}/tools/enospc_shim.c)
target_link_libraries(enospc_shim PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(enospc_shim PROPERTIES PREFIX "" C_VISIBILITY_PRESET default)
