/* `kache doctor [--json]`: checks a kache setup and names the fix for each
 * problem (cli/doctor.c). */
#ifndef KACHE_CLI_DOCTOR_H
#define KACHE_CLI_DOCTOR_H

int cmd_doctor(int argc, char **argv);

#endif
