// without-seccomp: runs a command as a kernel without seccomp filters would run it — its
// seccomp(2) fails with ENOSYS and prctl(PR_SET_SECCOMP) with EINVAL, as on a kernel built
// without CONFIG_SECCOMP or under qemu-user — so that the tests can show what earshot-decode
// does when it cannot sandbox itself. It gets there with a seccomp filter of its own (a
// filter may forbid installing further filters), so it needs a kernel that has them.
//
//   without-seccomp COMMAND [ARG...]
//
// Exit status: COMMAND's; 125 when the filter cannot be installed, 127 when COMMAND cannot
// be run. A test tool: nothing in the service runs it.
#include <seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 2) {
    fputs("usage: without-seccomp COMMAND [ARG...]\n", stderr);
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) {
    fputs("without-seccomp: cannot create a seccomp filter\n", stderr);
    return 125;
  }
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(seccomp), 0);
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP));
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    fprintf(stderr, "without-seccomp: cannot install its filter: %s\n", strerror(-rc));
    return 125;
  }
  execv(argv[1], argv + 1);
  fprintf(stderr, "without-seccomp: cannot run %s: %s\n", argv[1], strerror(errno));
  return 127;
}
