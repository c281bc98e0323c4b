/*
 * The system calls vtpmd needs and Node's API does not offer, in one small N-API addon:
 *
 *   lockFile(fd)            an open-file-description write lock on a whole file (F_OFD_SETLK)
 *   flockFile(fd)           flock(LOCK_EX | LOCK_NB), the lock swtpm_localca takes
 *   notify(path, bytes)     one AF_UNIX datagram (sd_notify(3)), abstract names as "@name"
 *   chroot(path)            chroot(2) and chdir("/")
 *   connect, watchDevice, offer, takeWrites, deviceStats, write, close
 *                           connections served from the event loop (connection.c)
 *
 * Errors are returned as negative errno values, never thrown: the TypeScript side
 * (syscalls.ts) turns them into messages that say what to fix.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "connection.h"

/* Copies a JS string into buf (NUL-terminated); -ENAMETOOLONG when it does not fit. */
static int string_arg(napi_env env, napi_value v, char *buf, size_t size, size_t *len) {
  if (napi_get_value_string_utf8(env, v, buf, size, len) != napi_ok) return -EINVAL;
  return *len + 1 >= size ? -ENAMETOOLONG : 0;
}

/*
 * lockFile(fd) -> [status, pid]: [0, 0] locked; [1, pid] held elsewhere (pid of a POSIX-lock
 * holder such as swtpm, -1 for an OFD holder, 0 when it cannot be told); [-errno, 0] no answer.
 * The lock belongs to the open file, not the process: it lasts while any descriptor of that
 * open file does, and the kernel drops it on the last close, SIGKILL included.
 */
static napi_value LockFile(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (args(env, info, 1, argv) < 0) return NULL;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  int status = 0, pid = 0;
  struct flock want = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(fd, F_OFD_SETLK, &want) < 0) {
    if (errno == EAGAIN || errno == EACCES) {
      struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
      status = 1;
      if (fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK) pid = probe.l_pid;
    } else {
      status = -errno;
    }
  }
  napi_value out;
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_set_element(env, out, 0, int_value(env, status)));
  CHECK(napi_set_element(env, out, 1, int_value(env, pid)));
  return out;
}

/* flockFile(fd) -> 0 locked, 1 held by another open file, -errno. Never waits. */
static napi_value FlockFile(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (args(env, info, 1, argv) < 0) return NULL;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  int rc;
  do rc = flock(fd, LOCK_EX | LOCK_NB);
  while (rc < 0 && errno == EINTR);
  return int_value(env, rc == 0 ? 0 : errno == EWOULDBLOCK ? 1 : -errno);
}

/* notify(path, bytes) -> 0 or -errno. "@name" is the abstract socket "\0name", as systemd says. */
static napi_value Notify(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  char path[sizeof addr.sun_path + 1];
  size_t len;
  void *data;
  size_t size;
  if (args(env, info, 2, argv) < 0) return NULL;
  int rc = string_arg(env, argv[0], path, sizeof path, &len);
  if (rc == 0 && len == 0) rc = -EINVAL;
  if (rc < 0) return int_value(env, rc);
  CHECK(napi_get_buffer_info(env, argv[1], &data, &size));
  memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  /* A path name counts its terminating NUL; an abstract name is exactly its bytes. */
  socklen_t addrlen = offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1);
  if (addrlen > sizeof addr) return int_value(env, -ENAMETOOLONG);
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return int_value(env, -errno);
  ssize_t n;
  do n = sendto(s, data, size, MSG_NOSIGNAL, (struct sockaddr *)&addr, addrlen);
  while (n < 0 && errno == EINTR);
  rc = n < 0 ? -errno : 0;
  close(s);
  return int_value(env, rc);
}

/* chroot(path) -> 0 or -errno; the working directory moves to the new root, as swtpm's. */
static napi_value Chroot(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[4096];
  size_t len;
  if (args(env, info, 1, argv) < 0) return NULL;
  int rc = string_arg(env, argv[0], path, sizeof path, &len);
  if (rc == 0 && (chroot(path) < 0 || chdir("/") < 0)) rc = -errno;
  return int_value(env, rc);
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"lockFile", NULL, LockFile, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flockFile", NULL, FlockFile, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notify", NULL, Notify, NULL, NULL, NULL, napi_enumerable, NULL},
      {"chroot", NULL, Chroot, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connect", NULL, Connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchDevice", NULL, WatchDevice, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, Write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"offer", NULL, Offer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"takeWrites", NULL, TakeWrites, NULL, NULL, NULL, napi_enumerable, NULL},
      {"deviceStats", NULL, DeviceStats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
