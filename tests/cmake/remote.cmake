# Packs and the remote layout.
kache_unit_test(test_pack kache_remote kache_pack)
target_sources(test_pack PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit/pages.c)
# A filesystem that refuses O_DIRECT (this machine's all take it, tmpfs too):
# the test's open() says EINVAL to O_DIRECT while refuse_direct is set.
target_link_options(test_pack PRIVATE "LINKER:--wrap=open")
# Signed remotes: keys, trailers, the signature check (remote/sign.c).
kache_unit_test(test_sign kache_remote)
kache_unit_test(test_remote_session kache_remote)
kache_unit_test(test_layout_lock kache_remote)
