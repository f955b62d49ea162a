# Packs and the remote layout.
kache_unit_test(test_pack kache_remote kache_pack)
kache_unit_test(test_remote_session kache_remote)
