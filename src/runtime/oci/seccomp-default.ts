import type { Seccomp, SeccompArg, SeccompSyscall } from './oci-types.ts';

/**
 * berth's default seccomp profile: the semantics of Docker's default
 * (moby profiles/seccomp/default.json): everything not listed fails with
 * EPERM; a fixed allow-list; more syscalls for containers that hold the
 * capability which makes them safe (CAP_SYS_ADMIN, CAP_SYS_PTRACE, ...);
 * `clone` without namespace flags and `clone3` as ENOSYS (so libc falls back
 * to clone, whose flags can be checked) when CAP_SYS_ADMIN is missing; and
 * `personality` only for the harmless personas.
 *
 * Rules are data with include/exclude filters, resolved per container by
 * `defaultSeccomp(caps)` the way moby resolves its profile.
 */

const EPERM = 1;
const ENOSYS = 38;
const AF_VSOCK = 40;
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET */
const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

interface Filter {
  caps?: string[];
  arches?: string[];
  minKernel?: [number, number];
}

interface Rule {
  names: string[];
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: SeccompArg[];
  includes?: Filter;
  excludes?: Filter;
}

const ALLOWED = `
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid
getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid
getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek
lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir
mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll
ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64
pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir
rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range
syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`.trim().split(/\s+/);

const allow = (names: string, more: Partial<Rule> = {}): Rule => ({ names: names.split(' '), action: 'SCMP_ACT_ALLOW', ...more });
const withCap = (cap: string, names: string): Rule => allow(names, { includes: { caps: [cap] } });
const personality = (value: number): Rule => allow('personality', { args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] });

/** The rules of the default profile, in moby's order. */
export const DEFAULT_SECCOMP_RULES: readonly Rule[] = [
  { names: ALLOWED, action: 'SCMP_ACT_ALLOW' },
  allow('process_vm_readv process_vm_writev ptrace', { includes: { minKernel: [4, 8] } }),
  allow('socket', { args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] }),
  // PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (query)
  personality(0x0),
  personality(0x0008),
  personality(0x20000),
  personality(0x20008),
  personality(0xffffffff),
  allow('sync_file_range2 swapcontext', { includes: { arches: ['ppc64le'] } }),
  allow('arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls', { includes: { arches: ['arm', 'arm64'] } }),
  allow('arch_prctl', { includes: { arches: ['amd64', 'x32'] } }),
  allow('modify_ldt', { includes: { arches: ['amd64', 'x32', 'x86'] } }),
  allow('s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr', { includes: { arches: ['s390', 's390x'] } }),
  allow('riscv_flush_icache', { includes: { arches: ['riscv64'] } }),
  withCap('CAP_DAC_READ_SEARCH', 'open_by_handle_at'),
  withCap(
    'CAP_SYS_ADMIN',
    'bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr move_mount ' +
      'open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare',
  ),
  allow('clone', {
    args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] },
  }),
  allow('clone', {
    // s390 passes the flags as the second argument
    args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    includes: { arches: ['s390', 's390x'] },
    excludes: { caps: ['CAP_SYS_ADMIN'] },
  }),
  // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc fall back to clone
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  withCap('CAP_SYS_BOOT', 'reboot'),
  withCap('CAP_SYS_CHROOT', 'chroot'),
  withCap('CAP_SYS_MODULE', 'delete_module init_module finit_module'),
  withCap('CAP_SYS_PACCT', 'acct'),
  withCap('CAP_SYS_PTRACE', 'kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'),
  withCap('CAP_SYS_RAWIO', 'iopl ioperm'),
  withCap('CAP_SYS_TIME', 'settimeofday stime clock_settime clock_settime64'),
  withCap('CAP_SYS_TTY_CONFIG', 'vhangup'),
  withCap('CAP_SYS_NICE', 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node'),
  withCap('CAP_SYSLOG', 'syslog'),
  withCap('CAP_BPF', 'bpf'),
  withCap('CAP_PERFMON', 'perf_event_open'),
];

/** Seccomp architectures per Go-style arch name: the native one and the ones its kernel also runs. */
const ARCH_MAP: Record<string, string[]> = {
  amd64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
  s390x: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'],
  riscv64: ['SCMP_ARCH_RISCV64'],
};

export interface SeccompOptions {
  /** Go-style arch name ("amd64", "arm64"); default amd64, the only one berth ships for. */
  arch?: string;
  /** Running kernel [major, minor]; default new enough for every rule. */
  kernel?: [number, number];
  /**
   * false when the kernel cannot run x32 system calls: SCMP_ARCH_X32 is then
   * left out. Its rules could only match calls the kernel fails anyway, and
   * runc compiles every architecture's rules into the filter of every
   * container (about a third of the filter's cost, measured in "The start
   * path"). Without it an x32 call meets the filter's bad-architecture
   * action (the thread is killed) where it got EPERM or ENOSYS: stricter,
   * never looser. Default true: Docker's list.
   */
  x32?: boolean;
}

const kernelAtLeast = (k: [number, number], min: [number, number]) => k[0] > min[0] || (k[0] === min[0] && k[1] >= min[1]);

function ruleApplies(rule: Rule, caps: readonly string[], arch: string, kernel: [number, number]): boolean {
  const ex = rule.excludes;
  if (ex) {
    if (ex.arches?.includes(arch)) return false;
    if (ex.caps?.some((c) => caps.includes(c))) return false;
    if (ex.minKernel && kernelAtLeast(kernel, ex.minKernel)) return false;
  }
  const inc = rule.includes;
  if (inc) {
    if (inc.arches && !inc.arches.includes(arch)) return false;
    if (inc.caps && !inc.caps.every((c) => caps.includes(c))) return false;
    if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) return false;
  }
  return true;
}

/**
 * The default profile for a container whose bounding set is `caps`, as the
 * OCI `linux.seccomp` object: defaultAction SCMP_ACT_ERRNO with EPERM, the
 * arch and its compat arches, and the rules whose filters match.
 */
export function defaultSeccomp(caps: readonly string[], opts: SeccompOptions = {}): Seccomp {
  const arch = opts.arch ?? 'amd64';
  const kernel = opts.kernel ?? [99, 0];
  const syscalls: SeccompSyscall[] = [];
  for (const rule of DEFAULT_SECCOMP_RULES) {
    if (!ruleApplies(rule, caps, arch, kernel)) continue;
    const s: SeccompSyscall = { names: [...rule.names], action: rule.action };
    if (rule.errnoRet !== undefined) s.errnoRet = rule.errnoRet;
    if (rule.args) s.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(s);
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: (ARCH_MAP[arch] ?? []).filter((a) => a !== 'SCMP_ARCH_X32' || opts.x32 !== false),
    syscalls,
  };
}
