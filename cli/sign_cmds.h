/* Commands of signed remotes (docs/remote-layout.md, "Signatures"). */
#ifndef KACHE_CLI_SIGN_CMDS_H
#define KACHE_CLI_SIGN_CMDS_H

/* kache keygen [--out FILE] */
int cmd_keygen(int argc, char **argv);
/* kache verify --remote [--max N]: called by cmd_verify. */
int cmd_verify_remote(int argc, char **argv);

#endif
