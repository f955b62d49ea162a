# A full disk (tests/cli/test_enospc.py): an LD_PRELOAD shim that makes writes
# under a directory fail with ENOSPC, and where mount works, a real small tmpfs.
add_library(enospc_shim SHARED ${CMAKE_CURRENT_SOURCE_DIR}/tools/enospc_shim.c)
target_link_libraries(enospc_shim PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(enospc_shim PROPERTIES PREFIX "" C_VISIBILITY_PRESET default)
# Never sanitized: it is preloaded into every program a build runs (rustc's
# linker too), and those do not carry ASan's runtime.
target_compile_options(enospc_shim PRIVATE -fno-sanitize=all)
target_link_options(enospc_shim PRIVATE -fno-sanitize=all)
set(kache_enospc_tests
    FullDisk.test_shim_reads_work_and_gc_purge_free_space
    FullDisk.test_shim_supervisor_survives_and_resumes
    FullDisk.test_shim_build_under_full_store_passes_through
    FullDisk.test_spawn_backoff_for_a_supervisor_that_keeps_dying
    FullDisk.test_tmpfs_full_disk
    ForeignRunDir.test_clients_refuse_a_run_dir_another_uid_owns)
foreach(t ${kache_enospc_tests})
  add_test(NAME cli_enospc_${t}
           COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_enospc.py ${t})
  set_tests_properties(cli_enospc_${t} PROPERTIES TIMEOUT 300
      ENVIRONMENT "KACHED=$<TARGET_FILE:kached>;KACHE=$<TARGET_FILE:kache>;FIXTURE=$<TARGET_FILE:index_fixture>;POKE=$<TARGET_FILE:proto_poke>;SHIM=$<TARGET_FILE:enospc_shim>")
endforeach()
