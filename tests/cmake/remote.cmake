# Packs and the remote layout.
kache_unit_test(test_pack kache_remote kache_pack)
# Signed remotes: keys, trailers, the signature check (remote/sign.c).
kache_unit_test(test_sign kache_remote)
kache_unit_test(test_remote_session kache_remote)
kache_unit_test(test_layout_lock kache_remote)
