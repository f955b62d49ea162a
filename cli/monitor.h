/* `kache monitor`: the live terminal UI (cli/monitor*.c). */
#ifndef KACHE_CLI_MONITOR_H
#define KACHE_CLI_MONITOR_H

int cmd_monitor(int argc, char **argv);

#endif
