/*
 * The system calls vtpmd needs and Node's API does not offer, in one small N-API addon:
 *
 *   lockFile(fd)            an open-file-description write lock on a whole file (F_OFD_SETLK)
 *   flockFile(fd)           flock(LOCK_EX | LOCK_NB), the lock swtpm_localca takes
 *   notify(path, bytes)     one AF_UNIX datagram (sd_notify(3)), abstract names as "@name"
 *   chroot(path)            chroot(2) and chdir("/")
 *   watchDescriptors(fd, cb) / unwatch(handle)
 *                           reads a unix stream socket with recvmsg(2), so descriptors sent
 *                           with the bytes (SCM_RIGHTS) reach JS with those bytes
 *
 * Errors are returned as negative errno values, never thrown: the TypeScript side
 * (syscalls.ts) turns them into messages that say what to fix.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

/* As many descriptors as one message may carry; the kernel closes any that do not fit. */
#define MAX_FDS 16
/* One read: the control channel's largest request is 4 + 4100 bytes, read in pieces if need be. */
#define READ_SIZE 8192

#define CHECK(call)                                                                    \
  do {                                                                                 \
    if ((call) != napi_ok) {                                                           \
      napi_throw_error(env, NULL, "vtpmd_native: " #call " failed");                   \
      return NULL;                                                                     \
    }                                                                                  \
  } while (0)

static napi_value int_value(napi_env env, int v) {
  napi_value out;
  CHECK(napi_create_int32(env, v, &out));
  return out;
}

static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "vtpmd_native: missing arguments");
    return -1;
  }
  return 0;
}

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

/*
 * One watched socket: our own duplicate of its descriptor, polled by Node's event loop. Two
 * owners, freed when both are done: the poll handle (until its close callback) and the JS
 * handle (until it is collected, which also stops a watch nobody can stop any more).
 */
typedef struct {
  uv_poll_t poll;
  int fd;
  int stopped;
  int owners;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
} watch_t;

static void watch_release(watch_t *w) {
  if (--w->owners == 0) free(w);
}

static void watch_closed(uv_handle_t *handle) {
  watch_t *w = handle->data;
  close(w->fd);
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->async);
  watch_release(w);
}

static void watch_stop(watch_t *w) {
  if (w->stopped) return;
  w->stopped = 1;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static void watch_collected(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watch_stop(data);
  watch_release(data);
}

/* callback(bytes | null, fds, errno): null bytes is the end (errno 0: the peer closed). */
static void deliver(watch_t *w, const char *bytes, ssize_t n, const int *fds, int nfds, int err) {
  napi_env env = w->env;
  napi_value argv[3], cb, recv, fd_array, result;
  if (n > 0) {
    void *copy;
    napi_create_buffer_copy(env, (size_t)n, bytes, &copy, &argv[0]);
  } else {
    napi_get_null(env, &argv[0]);
  }
  napi_create_array_with_length(env, nfds, &fd_array);
  for (int i = 0; i < nfds; i++) {
    napi_value v;
    napi_create_int32(env, fds[i], &v);
    napi_set_element(env, fd_array, i, v);
  }
  argv[1] = fd_array;
  napi_create_int32(env, err, &argv[2]);
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &recv); /* make_callback wants an object as `this` */
  if (napi_make_callback(env, w->async, recv, cb, 3, argv, &result) == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
}

static void readable(uv_poll_t *handle, int status, int events) {
  watch_t *w = handle->data;
  napi_handle_scope scope;
  (void)events;
  napi_open_handle_scope(w->env, &scope);
  if (status < 0) {
    watch_stop(w);
    deliver(w, NULL, 0, NULL, 0, -status);
  }
  while (!w->stopped) {
    char bytes[READ_SIZE];
    union {
      struct cmsghdr align;
      char space[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    } control;
    struct iovec iov = {.iov_base = bytes, .iov_len = sizeof bytes};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof control.space};
    ssize_t n = recvmsg(w->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    int err = n < 0 ? errno : 0;
    int fds[MAX_FDS], nfds = 0;
    for (struct cmsghdr *c = n < 0 ? NULL : CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < count && nfds < MAX_FDS; i++) memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    if (n <= 0) watch_stop(w);
    deliver(w, bytes, n, fds, nfds, err);
  }
  napi_close_handle_scope(w->env, scope);
}

/* watchDescriptors(fd, callback) -> handle. Reads a duplicate of fd until end or unwatch. */
static napi_value WatchDescriptors(napi_env env, napi_callback_info info) {
  napi_value argv[2], name, handle;
  int32_t fd;
  uv_loop_t *loop;
  if (args(env, info, 2, argv) < 0) return NULL;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_uv_event_loop(env, &loop));
  watch_t *w = calloc(1, sizeof *w);
  if (!w) return int_value(env, -ENOMEM);
  /* Our own descriptor: libuv keeps one watcher per descriptor number, and the stream that
   * writes the replies already has one for the original. */
  w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (w->fd < 0) {
    int err = errno;
    free(w);
    return int_value(env, -err);
  }
  w->env = env;
  w->owners = 1; /* the poll handle; the JS handle counts once it exists */
  w->poll.data = w;
  CHECK(napi_create_reference(env, argv[1], 1, &w->callback));
  CHECK(napi_create_string_utf8(env, "vtpmd:descriptors", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &w->async));
  int rc = uv_poll_init_socket(loop, &w->poll, w->fd);
  if (rc == 0) rc = uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, readable);
  if (rc < 0) {
    w->stopped = 1;
    uv_close((uv_handle_t *)&w->poll, watch_closed);
    return int_value(env, rc);
  }
  CHECK(napi_create_external(env, w, watch_collected, NULL, &handle));
  w->owners++;
  return handle;
}

/* unwatch(handle): stops reading and closes the duplicate (the original stays open). */
static napi_value Unwatch(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *w;
  if (args(env, info, 1, argv) < 0) return NULL;
  CHECK(napi_get_value_external(env, argv[0], &w));
  watch_stop(w);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"lockFile", NULL, LockFile, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flockFile", NULL, FlockFile, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notify", NULL, Notify, NULL, NULL, NULL, napi_enumerable, NULL},
      {"chroot", NULL, Chroot, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchDescriptors", NULL, WatchDescriptors, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatch", NULL, Unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
