/*
 * attack: probes a container's confinement from inside, one attack per run.
 *
 * Built static (musl-gcc -static -O2 -Wall -Wextra) into the `attack` test image
 * (scripts/build-test-images.sh) as /usr/local/bin/attack.
 *
 * Usage: attack PROBE [ARG...]      attack list   (the probe names, one a line)
 *
 * Each probe performs its attack for real and prints exactly one line on stdout:
 *
 *     LABEL: ok                              the attack succeeded (confinement failed)
 *     LABEL: denied ENAME (strerror text)    it was refused
 *
 * where LABEL is the probe and its arguments as given ("read-masked /proc/keys",
 * "syscall 425"). Exit status: 0 denied, 1 ok, 2 usage or setup error (message on stderr,
 * nothing on stdout). Unknown errno values print as their number. A read that succeeds but
 * returns nothing (a file masked by /dev/null, an empty directory or keyring) is reported as
 * denied ENODATA (or ENOKEY for an empty keyring). Details (each attempt, what was opened)
 * go to stderr, prefixed "attack: "; never a secret: keyctl-read prints payload lengths only.
 *
 * Exceptions: `kill-pgrp` prints "kill-pgrp: sent" (judged from outside) and `status`
 * prints lines of /proc/self/status; both exit 0.
 *
 * Probes that would leave a change behind undo it where they can: chmod-exe1 restores the
 * mode, mount-tmpfs unmounts, remount-sys-rw remounts read-only again if /sys was, ptrace1
 * detaches. fdwrite1, add-key and write leave their file / key behind as evidence.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Syscall numbers the libc headers may lack. The newer ones are the same on every
 * architecture (the generic table); the older ones differ between x86_64 and aarch64. */
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#if defined(__x86_64__)
#define ARCH_NR(x86_64, aarch64) (x86_64)
#elif defined(__aarch64__)
#define ARCH_NR(x86_64, aarch64) (aarch64)
#endif
#ifndef SYS_add_key
#define SYS_add_key ARCH_NR(248, 217)
#endif
#ifndef SYS_keyctl
#define SYS_keyctl ARCH_NR(250, 219)
#endif
#ifndef SYS_perf_event_open
#define SYS_perf_event_open ARCH_NR(298, 241)
#endif
#ifndef SYS_bpf
#define SYS_bpf ARCH_NR(321, 280)
#endif
#ifndef SYS_userfaultfd
#define SYS_userfaultfd ARCH_NR(323, 282)
#endif

/* <linux/keyctl.h> */
#define KEY_SPEC_SESSION_KEYRING (-3)
#define KEY_SPEC_USER_KEYRING (-4)
#define KEY_SPEC_USER_SESSION_KEYRING (-5)
#define KEYCTL_DESCRIBE 6
#define KEYCTL_SEARCH 10
#define KEYCTL_READ 11

/* <asm-generic/ioctls.h>, the same on x86_64 and aarch64 */
#ifndef TIOCSTI
#define TIOCSTI 0x5412
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
/* <linux/tiocl.h> */
#define TIOCL_SETSEL 2
#define TIOCL_SELCLEAR 4

/* <sys/statvfs.h> (musl and glibc have them; kept for older headers) */
#ifndef ST_NOATIME
#define ST_NOATIME 1024
#endif
#ifndef ST_NODIRATIME
#define ST_NODIRATIME 2048
#endif
#ifndef ST_RELATIME
#define ST_RELATIME 4096
#endif
#ifndef MS_RELATIME
#define MS_RELATIME (1 << 21)
#endif

#ifndef __WALL
#define __WALL 0x40000000
#endif

/* <linux/bpf.h> */
#define BPF_MAP_CREATE 0
#define BPF_MAP_TYPE_ARRAY 2

/* <linux/perf_event.h>: the attribute layout of PERF_ATTR_SIZE_VER0 (64 bytes). */
#define PERF_TYPE_SOFTWARE 1
#define PERF_COUNT_SW_TASK_CLOCK 1
#define PERF_ATTR_DISABLED (1ULL << 0)
#define PERF_ATTR_EXCLUDE_KERNEL (1ULL << 5)
#define PERF_ATTR_EXCLUDE_HV (1ULL << 6)
#define PERF_FLAG_FD_CLOEXEC (1UL << 3)
struct perf_attr_v0 {
    uint32_t type;
    uint32_t size;
    uint64_t config;
    uint64_t sample_period;
    uint64_t sample_type;
    uint64_t read_format;
    uint64_t flags; /* the bitfield word: disabled, inherit, ... */
    uint32_t wakeup_events;
    uint32_t bp_type;
    uint64_t config1;
};
_Static_assert(sizeof(struct perf_attr_v0) == 64, "PERF_ATTR_SIZE_VER0");

/* <linux/sched.h>: struct clone_args, CLONE_ARGS_SIZE_VER0 (64 bytes). */
struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};
_Static_assert(sizeof(struct clone_args_v0) == 64, "CLONE_ARGS_SIZE_VER0");

static char label[512];

static const struct {
    int num;
    const char *name;
} errnames[] = {
#define E(x) {x, #x}
    E(EPERM),     E(ENOENT),       E(ESRCH),        E(EINTR),         E(EIO),
    E(ENXIO),     E(E2BIG),        E(ENOEXEC),      E(EBADF),         E(ECHILD),
    E(EAGAIN),    E(ENOMEM),       E(EACCES),       E(EFAULT),        E(ENOTBLK),
    E(EBUSY),     E(EEXIST),       E(EXDEV),        E(ENODEV),        E(ENOTDIR),
    E(EISDIR),    E(EINVAL),       E(ENFILE),       E(EMFILE),        E(ENOTTY),
    E(ETXTBSY),   E(EFBIG),        E(ENOSPC),       E(ESPIPE),        E(EROFS),
    E(EMLINK),    E(EPIPE),        E(EDOM),         E(ERANGE),        E(EDEADLK),
    E(ENAMETOOLONG), E(ENOLCK),    E(ENOSYS),       E(ENOTEMPTY),     E(ELOOP),
    E(ENOMSG),    E(ENODATA),      E(ENOSTR),       E(ETIME),         E(EOVERFLOW),
    E(EBADFD),    E(EUSERS),       E(ENOTSOCK),     E(EDESTADDRREQ),  E(EMSGSIZE),
    E(EPROTOTYPE), E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT),
    E(EOPNOTSUPP), E(EPFNOSUPPORT), E(EAFNOSUPPORT), E(EADDRINUSE),   E(EADDRNOTAVAIL),
    E(ENETDOWN),  E(ENETUNREACH),  E(ECONNREFUSED), E(ETIMEDOUT),     E(EALREADY),
    E(EINPROGRESS), E(ESTALE),     E(EDQUOT),       E(ECANCELED),     E(ENOKEY),
    E(EKEYEXPIRED), E(EKEYREVOKED), E(EKEYREJECTED), E(EOWNERDEAD),   E(ENOTRECOVERABLE),
    E(ERFKILL),   E(EHWPOISON),    E(EMEDIUMTYPE),  E(ENOMEDIUM),
#undef E
};

static const char *errname(int e) {
    static char num[16];
    for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
        if (errnames[i].num == e)
            return errnames[i].name;
    snprintf(num, sizeof num, "%d", e);
    return num;
}

/* The verdicts: one line on stdout, flushed at once (a probe may still block or be killed
 * while it cleans up). */
static int ok(void) {
    printf("%s: ok\n", label);
    fflush(stdout);
    return 1;
}

static int denied(int e) {
    printf("%s: denied %s (%s)\n", label, errname(e), strerror(e));
    fflush(stdout);
    return 0;
}

/* Diagnostics on stderr. */
__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attack: %s: ", label);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

__attribute__((format(printf, 1, 2))) static int setup_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attack: %s: setup error: ", label);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

static const char *why(int e) { return strerror(e); }

/* Of several failed attempts, the errno to report: the first one that says more than
 * "not applicable to this entry" (boring: a zero-terminated list), else the first one. */
struct errpick {
    int first, telling;
};

static void pick(struct errpick *p, int e, const int *boring) {
    if (!p->first)
        p->first = e;
    for (; *boring; boring++)
        if (*boring == e)
            return;
    if (!p->telling)
        p->telling = e;
}

static int picked(const struct errpick *p) {
    return p->telling ? p->telling : p->first ? p->first : ENOENT;
}

/* ---- terminals ---------------------------------------------------------------------- */

static int p_tiocsti(char **args) {
    (void)args;
    char c = 'x';
    int injected = 0, first = 0;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        first = errno;
        note("open /dev/tty: %s", why(errno));
    } else {
        if (ioctl(fd, TIOCSTI, &c) == 0) {
            injected = 1;
            note("TIOCSTI on /dev/tty injected a character");
        } else {
            first = errno;
            note("TIOCSTI on /dev/tty: %s", why(errno));
        }
        close(fd);
    }
    if (isatty(0)) {
        if (ioctl(0, TIOCSTI, &c) == 0) {
            injected = 1;
            note("TIOCSTI on stdin injected a character");
        } else {
            if (!first)
                first = errno;
            note("TIOCSTI on stdin: %s", why(errno));
        }
    } else {
        note("stdin is not a tty: not tried on it");
    }
    return injected ? ok() : denied(first);
}

static int p_tioclinux(char **args) {
    (void)args;
    /* TIOCL_SETSEL clearing the selection: the subcode byte, then struct tiocl_selection
     * {xs, ys, xe, ye, sel_mode} (unaligned, at offset 1). Harmless if it works. */
    unsigned short sel[5] = {1, 1, 1, 1, TIOCL_SELCLEAR};
    unsigned char buf[1 + sizeof sel];
    buf[0] = TIOCL_SETSEL;
    memcpy(buf + 1, sel, sizeof sel);
    if (ioctl(0, TIOCLINUX, buf) == 0)
        return ok();
    return denied(errno);
}

/* ---- pid 1 -------------------------------------------------------------------------- */

static int p_ptrace1(char **args) {
    (void)args;
    if (ptrace(PTRACE_ATTACH, (pid_t)1, (void *)0, (void *)0) != 0)
        return denied(errno);
    int r = ok();
    /* Detach: wait for the attach stop first (PTRACE_DETACH needs a stopped tracee); if
     * that never comes, the alarm kills us and exiting detaches too. */
    alarm(10);
    int status;
    if (waitpid(1, &status, __WALL) < 0)
        note("waitpid(1): %s", why(errno));
    if (ptrace(PTRACE_DETACH, (pid_t)1, (void *)0, (void *)0) != 0)
        note("PTRACE_DETACH: %s", why(errno));
    return r;
}

static int p_mem1(char **args) {
    (void)args;
    int fd = open("/proc/1/mem", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return denied(errno);
    close(fd);
    return ok();
}

static int p_environ1(char **args) {
    (void)args;
    char buf[4096];
    int fd = open("/proc/1/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return denied(errno);
    ssize_t n = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (n < 0)
        return denied(e);
    if (n == 0) {
        note("opened, but read nothing");
        return denied(ENODATA);
    }
    note("read %zd bytes", n);
    return ok();
}

/* Calls try(dir, name) for every entry of the fd directory DIR (or, when DIR cannot be
 * listed, for 0..255 blindly); ok if any succeeded. */
static int each_fd(const char *dir, int (*try)(const char *dir, const char *name, int *err),
                   const int *boring) {
    struct errpick p = {0, 0};
    int any = 0, tried = 0;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        note("cannot list %s: %s; trying fds 0-255 blindly", dir, why(e));
        for (int n = 0; n < 256; n++) {
            char name[16];
            int err;
            snprintf(name, sizeof name, "%d", n);
            if (try(dir, name, &err))
                any = 1;
        }
        return any ? ok() : denied(e);
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        int err = 0;
        tried++;
        if (try(dir, de->d_name, &err))
            any = 1;
        else
            pick(&p, err, boring);
    }
    closedir(d);
    if (any)
        return ok();
    if (!tried)
        note("%s has no entries", dir);
    return denied(picked(&p));
}

static void describe_fd(const char *dir, const char *name, char *out, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ssize_t n = readlink(path, out, len - 1);
    if (n < 0)
        snprintf(out, len, "(readlink: %s)", why(errno));
    else
        out[n] = 0;
}

static int try_open_fd(const char *dir, const char *name, int *err) {
    char path[4096], target[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return 0;
    }
    describe_fd(dir, name, target, sizeof target);
    note("opened %s -> %s", path, target);
    close(fd);
    return 1;
}

static int try_create_in_fd(const char *dir, const char *name, int *err) {
    char path[4096], target[4096];
    snprintf(path, sizeof path, "%s/%s/attack-was-here", dir, name);
    int fd = open(path, O_CREAT | O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644);
    if (fd < 0) {
        *err = errno;
        return 0;
    }
    describe_fd(dir, name, target, sizeof target);
    note("created %s (in %s)", path, target);
    close(fd);
    return 1;
}

static int p_fd1(char **args) {
    /* Sockets and anonymous inodes cannot be opened through /proc (ENXIO), closed fds
     * vanish (ENOENT): those say nothing about confinement. */
    static const int boring[] = {ENXIO, ENOENT, 0};
    return each_fd(args[0] ? args[0] : "/proc/1/fd", try_open_fd, boring);
}

static int p_fdwrite1(char **args) {
    static const int boring[] = {ENOTDIR, ENXIO, ENOENT, 0};
    return each_fd(args[0] ? args[0] : "/proc/1/fd", try_create_in_fd, boring);
}

static int p_chmod_exe1(char **args) {
    (void)args;
    struct stat st;
    int have_mode = stat("/proc/1/exe", &st) == 0;
    if (!have_mode)
        note("stat /proc/1/exe: %s", why(errno));
    if (chmod("/proc/1/exe", 04777) != 0)
        return denied(errno);
    int r = ok();
    if (!have_mode)
        note("changed the mode of /proc/1/exe; its old mode is unknown, not restored");
    else if (chmod("/proc/1/exe", st.st_mode & 07777) != 0)
        note("could not restore mode %04o: %s", (unsigned)(st.st_mode & 07777), why(errno));
    else
        note("restored mode %04o", (unsigned)(st.st_mode & 07777));
    return r;
}

/* ---- mounts and namespaces ---------------------------------------------------------- */

static int p_mount_tmpfs(char **args) {
    (void)args;
    const char *mp = "/tmp/m";
    int made = 0;
    struct stat st;
    if (mkdir(mp, 0755) == 0) {
        made = 1;
    } else if (errno != EEXIST) {
        note("mkdir %s: %s; mounting on /tmp instead", mp, why(errno));
        mp = "/tmp";
    }
    if (stat(mp, &st) != 0 || !S_ISDIR(st.st_mode))
        return setup_error("no directory %s to mount on", mp);
    if (mount("tmpfs", mp, "tmpfs", 0, NULL) != 0) {
        int e = errno;
        if (made)
            rmdir(mp);
        return denied(e);
    }
    int r = ok();
    if (umount2(mp, MNT_DETACH) != 0)
        note("umount %s: %s", mp, why(errno));
    if (made)
        rmdir(mp);
    return r;
}

static int p_remount_sys_rw(char **args) {
    (void)args;
    /* Keep the flags /sys has (nosuid, nodev, noexec, atime: in a user namespace they are
     * locked and clearing them fails on its own), drop only read-only. */
    struct statvfs sv;
    unsigned long keep = 0;
    int was_ro = 0;
    if (statvfs("/sys", &sv) == 0) {
        was_ro = (sv.f_flag & ST_RDONLY) != 0;
        if (sv.f_flag & ST_NOSUID)
            keep |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
            keep |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
            keep |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME)
            keep |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
            keep |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
            keep |= MS_RELATIME;
        note("/sys is %s (flags %#lx)", was_ro ? "read-only" : "read-write", sv.f_flag);
    } else {
        note("statvfs /sys: %s", why(errno));
    }
    if (mount(NULL, "/sys", NULL, MS_REMOUNT | MS_BIND | keep, NULL) != 0)
        return denied(errno);
    int r = ok();
    if (was_ro && mount(NULL, "/sys", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) != 0)
        note("could not make /sys read-only again: %s", why(errno));
    return r;
}

static int do_unshare(int flag) {
    if (unshare(flag) != 0)
        return denied(errno);
    return ok();
}

static int p_unshare_user(char **args) {
    (void)args;
    return do_unshare(CLONE_NEWUSER);
}

static int p_unshare_net(char **args) {
    (void)args;
    return do_unshare(CLONE_NEWNET);
}

static int p_unshare_mnt(char **args) {
    (void)args;
    return do_unshare(CLONE_NEWNS);
}

static int reap(long pid) {
    int status;
    if (waitpid((pid_t)pid, &status, 0) < 0)
        note("waitpid: %s", why(errno));
    return ok();
}

static int p_clone_newuser(char **args) {
    (void)args;
    /* Fork-like (no new stack): the child returns here on a copy of ours. Argument order
     * differs between architectures, but all but the flags are 0. */
    long pid = syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L);
    if (pid < 0)
        return denied(errno);
    if (pid == 0)
        _exit(0);
    return reap(pid);
}

static int p_clone3_newuser(char **args) {
    (void)args;
    struct clone_args_v0 ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_NEWUSER;
    ca.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &ca, (long)sizeof ca);
    if (pid < 0)
        return denied(errno);
    if (pid == 0)
        _exit(0);
    return reap(pid);
}

/* ---- kernel interfaces -------------------------------------------------------------- */

/* Runs a syscall that returns a fd on success: ok (and closes it) or denied. */
static int fd_verdict(long fd) {
    if (fd < 0)
        return denied(errno);
    close((int)fd);
    return ok();
}

static int p_io_uring(char **args) {
    (void)args;
    uint32_t params[30]; /* struct io_uring_params, 120 bytes, all zero */
    memset(params, 0, sizeof params);
    return fd_verdict(syscall(SYS_io_uring_setup, 1L, params));
}

static int p_keyctl_read(char **args) {
    static char buf[65536];
    if (!args[0]) {
        char desc[512];
        long n = syscall(SYS_keyctl, (long)KEYCTL_DESCRIBE, (long)KEY_SPEC_SESSION_KEYRING,
                         desc, (long)(sizeof desc - 1), 0L);
        if (n < 0)
            return denied(errno);
        desc[(size_t)n < sizeof desc ? (size_t)n : sizeof desc - 1] = 0;
        note("session keyring: %s", desc);
        n = syscall(SYS_keyctl, (long)KEYCTL_READ, (long)KEY_SPEC_SESSION_KEYRING, buf,
                    (long)sizeof buf, 0L);
        if (n < 0)
            return denied(errno);
        if (n == 0) {
            note("the session keyring is empty");
            return denied(ENOKEY);
        }
        note("the session keyring links %ld keys", n / 4);
        return ok();
    }
    /* Look for the key where an attacker would: the session keyring (and what it links),
     * then the user's keyrings, which are shared by every process of the same uid. */
    static const struct {
        long id;
        const char *name;
    } rings[] = {
        {KEY_SPEC_SESSION_KEYRING, "session"},
        {KEY_SPEC_USER_KEYRING, "user"},
        {KEY_SPEC_USER_SESSION_KEYRING, "user-session"},
    };
    /* "not in this keyring" is expected of some; a refusal anywhere says more */
    static const int boring[] = {ENOKEY, 0};
    struct errpick p = {0, 0};
    for (size_t i = 0; i < sizeof rings / sizeof rings[0]; i++) {
        long key = syscall(SYS_keyctl, (long)KEYCTL_SEARCH, rings[i].id, "user", args[0], 0L);
        if (key < 0) {
            pick(&p, errno, boring);
            note("search the %s keyring: %s", rings[i].name, why(errno));
            continue;
        }
        long n = syscall(SYS_keyctl, (long)KEYCTL_READ, key, buf, (long)sizeof buf, 0L);
        if (n < 0) {
            pick(&p, errno, boring);
            note("found key %ld in the %s keyring; read: %s", key, rings[i].name, why(errno));
            continue;
        }
        note("read key %ld from the %s keyring: a %ld-byte payload", key, rings[i].name, n);
        return ok();
    }
    return denied(picked(&p));
}

static int p_add_key(char **args) {
    (void)args;
    long key = syscall(SYS_add_key, "user", "oci2bin-planted", "x", 1L,
                       (long)KEY_SPEC_SESSION_KEYRING);
    if (key < 0)
        return denied(errno);
    note("added key %ld to the session keyring", key);
    return ok();
}

/* Writes a sysctl's current value back to it (read first, so nothing changes). */
static int sysctl_write(const char *path) {
    char buf[4096];
    ssize_t n = -1;
    int rerr = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof buf);
        rerr = errno;
        close(fd);
    } else {
        rerr = errno;
    }
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return denied(errno);
    if (n <= 0) {
        close(fd);
        return setup_error("%s opens for writing but its value could not be read (%s): not "
                           "writing",
                           path, n < 0 ? why(rerr) : "empty");
    }
    ssize_t w = write(fd, buf, (size_t)n);
    int e = errno;
    close(fd);
    if (w < 0)
        return denied(e);
    note("wrote back %zd of %zd bytes", w, n);
    return ok();
}

static int p_core_pattern(char **args) {
    (void)args;
    return sysctl_write("/proc/sys/kernel/core_pattern");
}

static int p_sysctl_write(char **args) { return sysctl_write(args[0]); }

static int p_bpf(char **args) {
    (void)args;
    union {
        struct {
            uint32_t map_type, key_size, value_size, max_entries, map_flags;
        } map;
        unsigned char raw[128];
    } attr;
    memset(&attr, 0, sizeof attr);
    attr.map.map_type = BPF_MAP_TYPE_ARRAY;
    attr.map.key_size = 4;
    attr.map.value_size = 4;
    attr.map.max_entries = 1;
    return fd_verdict(syscall(SYS_bpf, (long)BPF_MAP_CREATE, &attr, (long)sizeof attr));
}

static int p_perf(char **args) {
    (void)args;
    struct perf_attr_v0 attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.flags = PERF_ATTR_DISABLED | PERF_ATTR_EXCLUDE_KERNEL | PERF_ATTR_EXCLUDE_HV;
    /* this process, any cpu, no group */
    return fd_verdict(
        syscall(SYS_perf_event_open, &attr, 0L, -1L, -1L, (long)PERF_FLAG_FD_CLOEXEC));
}

static int p_userfaultfd(char **args) {
    (void)args;
    return fd_verdict(syscall(SYS_userfaultfd, 0L));
}

static int p_raw_socket(char **args) {
    (void)args;
    return fd_verdict(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
}

/* ---- files -------------------------------------------------------------------------- */

static int p_read_masked(char **args) {
    const char *path = args[0];
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return denied(errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return setup_error("fstat %s: %s", path, why(e));
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = fdopendir(fd);
        if (!d) {
            int e = errno;
            close(fd);
            return denied(e);
        }
        long entries = 0;
        char first[256] = "";
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if (!entries++)
                snprintf(first, sizeof first, "%s", de->d_name);
        }
        int e = errno;
        closedir(d);
        if (e && !entries)
            return denied(e);
        if (!entries) {
            note("an empty directory");
            return denied(ENODATA);
        }
        note("a directory of %ld entries (%s, ...)", entries, first);
        return ok();
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (n < 0)
        return denied(e);
    if (n == 0) {
        note("opened, but read nothing");
        return denied(ENODATA);
    }
    note("read %zd bytes", n);
    return ok();
}

static int p_write(char **args) {
    int fd = open(args[0], O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY | O_CLOEXEC, 0644);
    if (fd < 0)
        return denied(errno);
    ssize_t w = write(fd, "x", 1);
    int e = errno;
    close(fd);
    if (w != 1)
        return denied(w < 0 ? e : EIO);
    return ok();
}

/* ---- no verdict --------------------------------------------------------------------- */

static int p_kill_pgrp(char **args) {
    (void)args;
    signal(SIGTERM, SIG_IGN);
    if (kill(0, SIGTERM) != 0) {
        denied(errno);
        return 0;
    }
    printf("%s: sent\n", label);
    return 0;
}

static int p_status(char **args) {
    (void)args;
    static const char *keys[] = {"CapInh",     "CapPrm",  "CapEff",          "CapBnd",
                                 "CapAmb",     "NoNewPrivs", "Seccomp", "Seccomp_filters"};
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return setup_error("open /proc/self/status: %s", why(errno));
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if ((size_t)(colon - line) == strlen(keys[i]) &&
                !strncmp(line, keys[i], (size_t)(colon - line)))
                fputs(line, stdout);
    }
    fclose(f);
    return 0;
}

static int p_syscall(char **args) {
    char *end;
    errno = 0;
    long nr = strtol(args[0], &end, 10);
    if (errno || end == args[0] || *end || nr < 0)
        return setup_error("not a syscall number: %s", args[0]);
    long r = syscall(nr, 0L, 0L, 0L, 0L, 0L, 0L);
    if (r == -1)
        return denied(errno);
    note("returned %ld", r);
    return ok();
}

/* ---- dispatch ----------------------------------------------------------------------- */

static const struct probe {
    const char *name;
    int min_args, max_args;
    int (*run)(char **args);
    const char *usage;
} probes[] = {
    {"tiocsti", 0, 0, p_tiocsti, "TIOCSTI on /dev/tty and on stdin"},
    {"tioclinux", 0, 0, p_tioclinux, "TIOCLINUX (clear selection) on stdin"},
    {"ptrace1", 0, 0, p_ptrace1, "PTRACE_ATTACH to pid 1"},
    {"mem1", 0, 0, p_mem1, "open /proc/1/mem"},
    {"environ1", 0, 0, p_environ1, "read /proc/1/environ"},
    {"fd1", 0, 1, p_fd1, "[DIR]: open every /proc/1/fd/N (or DIR/N)"},
    {"fdwrite1", 0, 1, p_fdwrite1, "[DIR]: create /proc/1/fd/N/attack-was-here"},
    {"chmod-exe1", 0, 0, p_chmod_exe1, "chmod 04777 /proc/1/exe (mode restored)"},
    {"mount-tmpfs", 0, 0, p_mount_tmpfs, "mount a tmpfs on /tmp/m"},
    {"remount-sys-rw", 0, 0, p_remount_sys_rw, "remount /sys read-write"},
    {"unshare-user", 0, 0, p_unshare_user, "unshare(CLONE_NEWUSER)"},
    {"unshare-net", 0, 0, p_unshare_net, "unshare(CLONE_NEWNET)"},
    {"unshare-mnt", 0, 0, p_unshare_mnt, "unshare(CLONE_NEWNS)"},
    {"clone-newuser", 0, 0, p_clone_newuser, "clone(CLONE_NEWUSER)"},
    {"clone3-newuser", 0, 0, p_clone3_newuser, "clone3(CLONE_NEWUSER)"},
    {"io_uring", 0, 0, p_io_uring, "io_uring_setup"},
    {"keyctl-read", 0, 1, p_keyctl_read,
     "[DESC]: list the session keyring, or read user key DESC"},
    {"add-key", 0, 0, p_add_key, "add user key oci2bin-planted to the session keyring"},
    {"core-pattern", 0, 0, p_core_pattern, "write kernel.core_pattern (its own value)"},
    {"sysctl-write", 1, 1, p_sysctl_write, "PATH: write a sysctl file (its own value)"},
    {"bpf", 0, 0, p_bpf, "BPF_MAP_CREATE (array)"},
    {"perf", 0, 0, p_perf, "perf_event_open (software, self)"},
    {"userfaultfd", 0, 0, p_userfaultfd, "userfaultfd(0)"},
    {"raw-socket", 0, 0, p_raw_socket, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)"},
    {"read-masked", 1, 1, p_read_masked, "PATH: read a file / list a directory"},
    {"write", 1, 1, p_write, "PATH: create/truncate PATH and write x"},
    {"kill-pgrp", 0, 0, p_kill_pgrp, "kill(0, SIGTERM), prints 'sent'"},
    {"status", 0, 0, p_status, "capability/seccomp lines of /proc/self/status"},
    {"syscall", 1, 1, p_syscall, "NR: syscall(NR, 0, 0, 0, 0, 0, 0)"},
};

static int usage(void) {
    fprintf(stderr, "usage: attack PROBE [ARG]   (attack list: the probe names)\n"
                    "exit 0 denied, 1 ok (the attack worked), 2 usage/setup error\n");
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        fprintf(stderr, "  %-15s %s\n", probes[i].name, probes[i].usage);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return usage();
    if (!strcmp(argv[1], "list") && argc == 2) {
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
            puts(probes[i].name);
        return 0;
    }
    size_t len = 0;
    for (int i = 1; i < argc && len < sizeof label - 1; i++)
        len += (size_t)snprintf(label + len, sizeof label - len, "%s%s", i > 1 ? " " : "",
                                argv[i]);
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        const struct probe *p = &probes[i];
        if (strcmp(argv[1], p->name))
            continue;
        int nargs = argc - 2;
        if (nargs < p->min_args || nargs > p->max_args)
            return usage();
        return p->run(argv + 2);
    }
    fprintf(stderr, "attack: unknown probe %s\n", argv[1]);
    return usage();
}
