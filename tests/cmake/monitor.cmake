# kache monitor (in tmux), doctor, init, and `kache daemon` status and log
# (tests/cli/test_monitor.py, test_setup_cli.py, test_daemon_cli.py).
if(TARGET kache AND TARGET kached)
  kache_py_tests(cli/test_monitor.py NAME cli_monitor_{case} TIMEOUT 600 LABELS scenario
      ENVIRONMENT KACHED=$<TARGET_FILE:kached> KACHE=$<TARGET_FILE:kache>
                  FIXTURE=$<TARGET_FILE:index_fixture>)
  kache_py_tests(cli/test_setup_cli.py NAME cli_setup_{class}_{case} TIMEOUT 120
      ENVIRONMENT KACHED=$<TARGET_FILE:kached> FIXTURE=$<TARGET_FILE:index_fixture>)
  kache_py_tests(cli/test_daemon_cli.py NAME cli_daemon_{case} TIMEOUT 120
      ENVIRONMENT KACHED=$<TARGET_FILE:kached> FIXTURE=$<TARGET_FILE:index_fixture>)
endif()
