/*
 * The system calls vtpmd needs and Node's API does not offer, in one small N-API addon:
 *
 *   lockFile(fd)            an open-file-description write lock on a whole file (F_OFD_SETLK)
 *   flockFile(fd)           flock(LOCK_EX | LOCK_NB), the lock swtpm_localca takes
 *   notify(path, bytes)     one AF_UNIX datagram (sd_notify(3)), abstract names as "@name"
 *   chroot(path)            chroot(2) and chdir("/")
 *   connect(fd, cb) / write(handle, bytes) / close(handle, afterWrite)
 *                           serves a stream socket from the event loop without Node's stream
 *                           layer: recvmsg(2), so descriptors sent with the bytes (SCM_RIGHTS)
 *                           reach JS with those bytes, and send(2) straight from the caller
 *   watchDevice(fd, size, cb) the same reading for a character device (/dev/cuse): read(2)
 *
 * Errors are returned as negative errno values, never thrown: the TypeScript side
 * (syscalls.ts) turns them into messages that say what to fix.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <stdbool.h>
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
 * One connection, read and written here: our own duplicate of the socket's descriptor, polled by
 * Node's event loop (libuv keeps one watcher per descriptor number, so the duplicate never
 * collides with a Node stream on the original). Reads use recvmsg, so descriptors sent with the
 * bytes (SCM_RIGHTS) come along; writes go out at once and only what the socket cannot take now
 * waits for it to become writable. Two owners, freed when both are done: the poll handle (until
 * its close callback) and the JS handle (until it is collected, which also closes a connection
 * nobody can reach any more).
 */
typedef struct {
  uv_poll_t poll;
  int fd;
  int stopped;
  int owners;
  int end_after_write; /* close once the pending bytes are out */
  int owns_fd;         /* a duplicate of ours (connections) or the caller's (devices) */
  char *read_buf;      /* devices: one request per read(), into a buffer this large */
  size_t read_size;
  int events;          /* what the poll handle waits for now */
  char *pending;       /* bytes the socket has not taken yet */
  size_t pending_len, pending_off;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
} conn_t;

static void conn_release(conn_t *c) {
  if (--c->owners == 0) free(c);
}

static void conn_closed(uv_handle_t *handle) {
  conn_t *c = handle->data;
  if (c->owns_fd) close(c->fd);
  free(c->pending);
  c->pending = NULL;
  free(c->read_buf);
  c->read_buf = NULL;
  napi_delete_reference(c->env, c->callback);
  napi_async_destroy(c->env, c->async);
  conn_release(c);
}

static void conn_stop(conn_t *c) {
  if (c->stopped) return;
  c->stopped = 1;
  uv_poll_stop(&c->poll);
  uv_close((uv_handle_t *)&c->poll, conn_closed);
}

static void conn_collected(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  conn_stop(data);
  conn_release(data);
}

/* callback(bytes | null, fds, errno): null bytes is the end (errno 0: the peer closed). */
static void deliver(conn_t *c, const char *bytes, ssize_t n, const int *fds, int nfds, int err) {
  napi_env env = c->env;
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
  napi_get_reference_value(env, c->callback, &cb);
  napi_get_global(env, &recv); /* make_callback wants an object as `this` */
  if (napi_make_callback(env, c->async, recv, cb, 3, argv, &result) == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
}

/* The end of the connection, told to JS once: stop first, so JS sees a closed connection. */
static void conn_fail(conn_t *c, int err) {
  if (c->stopped) return;
  conn_stop(c);
  deliver(c, NULL, 0, NULL, 0, err);
}

static void conn_poll(conn_t *c, int events);

/* Sends what is pending; 0 when all is out, 1 when the socket is full, -errno on failure. */
static int conn_flush(conn_t *c) {
  while (c->pending_off < c->pending_len) {
    ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
    c->pending_off += (size_t)n;
  }
  free(c->pending);
  c->pending = NULL;
  c->pending_len = c->pending_off = 0;
  return 0;
}

static void conn_writable(conn_t *c) {
  int rc = conn_flush(c);
  if (rc < 0) return conn_fail(c, -rc);
  if (rc > 0) return;
  if (c->end_after_write) return conn_fail(c, 0); /* the end JS waits for */
  conn_poll(c, UV_READABLE | UV_DISCONNECT);
}

/* A device (/dev/cuse): read(2), one whole request each time; ENOENT is an interrupted one. */
static void device_readable(conn_t *c) {
  while (!c->stopped) {
    ssize_t n = read(c->fd, c->read_buf, c->read_size);
    if (n < 0 && (errno == EINTR || errno == ENOENT)) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) return conn_fail(c, n < 0 ? errno : 0);
    deliver(c, c->read_buf, n, NULL, 0, 0);
  }
}

static void conn_readable(conn_t *c) {
  if (c->read_buf) return device_readable(c);
  while (!c->stopped) {
    char bytes[READ_SIZE];
    union {
      struct cmsghdr align;
      char space[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    } control;
    struct iovec iov = {.iov_base = bytes, .iov_len = sizeof bytes};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof control.space};
    ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) return conn_fail(c, n < 0 ? errno : 0);
    int fds[MAX_FDS], nfds = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
      if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
      int count = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < count && nfds < MAX_FDS; i++) memcpy(&fds[nfds++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
    }
    deliver(c, bytes, n, fds, nfds, 0);
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  conn_t *c = handle->data;
  napi_handle_scope scope;
  napi_open_handle_scope(c->env, &scope);
  if (status < 0) conn_fail(c, -status);
  if (!c->stopped && (events & UV_WRITABLE)) conn_writable(c);
  if (!c->stopped && !c->end_after_write && (events & (UV_READABLE | UV_DISCONNECT))) conn_readable(c);
  napi_close_handle_scope(c->env, scope);
}

static void conn_poll(conn_t *c, int events) {
  if (c->stopped || c->events == events) return;
  c->events = events;
  int rc = uv_poll_start(&c->poll, events, on_poll);
  if (rc < 0) conn_fail(c, -rc);
}

static conn_t *conn_arg(napi_env env, napi_value v) {
  void *c = NULL;
  napi_get_value_external(env, v, &c);
  return c;
}

/* Starts polling c->fd for reading; returns the JS handle, or -errno (c is then released). */
static napi_value conn_start(napi_env env, conn_t *c, napi_value callback, int socket) {
  napi_value name, handle;
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  c->env = env;
  c->owners = 1; /* the poll handle; the JS handle counts once it exists */
  c->poll.data = c;
  CHECK(napi_create_reference(env, callback, 1, &c->callback));
  CHECK(napi_create_string_utf8(env, "vtpmd:connection", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &c->async));
  int rc = socket ? uv_poll_init_socket(loop, &c->poll, c->fd) : uv_poll_init(loop, &c->poll, c->fd);
  if (rc < 0) {
    /* No handle to close: undo by hand what conn_closed would. */
    if (c->owns_fd) close(c->fd);
    napi_delete_reference(env, c->callback);
    napi_async_destroy(env, c->async);
    free(c->read_buf);
    free(c);
    return int_value(env, rc);
  }
  c->events = UV_READABLE | UV_DISCONNECT;
  rc = uv_poll_start(&c->poll, c->events, on_poll);
  if (rc < 0) {
    c->stopped = 1;
    uv_close((uv_handle_t *)&c->poll, conn_closed);
    return int_value(env, rc);
  }
  CHECK(napi_create_external(env, c, conn_collected, NULL, &handle));
  c->owners++;
  return handle;
}

/* connect(fd, callback) -> handle or -errno. Serves a duplicate of fd until the end or close. */
static napi_value Connect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  if (args(env, info, 2, argv) < 0) return NULL;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return int_value(env, -ENOMEM);
  c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (c->fd < 0) {
    int err = errno;
    free(c);
    return int_value(env, -err);
  }
  c->owns_fd = 1;
  return conn_start(env, c, argv[1], 1);
}

/*
 * watchDevice(fd, size, callback) -> handle or -errno. Reads fd itself (the caller keeps and
 * closes it, after close(handle)), one read() of up to `size` bytes per request.
 */
static napi_value WatchDevice(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd, size;
  if (args(env, info, 3, argv) < 0) return NULL;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &size));
  if (size <= 0) return int_value(env, -EINVAL);
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return int_value(env, -ENOMEM);
  c->fd = fd;
  c->read_size = (size_t)size;
  c->read_buf = malloc(c->read_size);
  if (!c->read_buf) {
    free(c);
    return int_value(env, -ENOMEM);
  }
  return conn_start(env, c, argv[2], 0);
}

/*
 * write(handle, bytes) -> 0 or -errno. Sent at once when the socket takes it (a TPM response
 * always fits); the rest waits for the socket, in order.
 */
static napi_value Write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *data;
  size_t size;
  if (args(env, info, 2, argv) < 0) return NULL;
  conn_t *c = conn_arg(env, argv[0]);
  if (!c) return NULL;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &size));
  if (c->stopped || c->end_after_write) return int_value(env, -EPIPE);
  size_t off = 0;
  while (!c->pending && off < size) {
    ssize_t n = send(c->fd, (char *)data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return int_value(env, -errno);
    if (n < 0) break;
    off += (size_t)n;
  }
  if (off == size) return int_value(env, 0);
  char *grown = realloc(c->pending, c->pending_len + (size - off));
  if (!grown) return int_value(env, -ENOMEM);
  memcpy(grown + c->pending_len, (char *)data + off, size - off);
  c->pending = grown;
  c->pending_len += size - off;
  conn_poll(c, UV_READABLE | UV_DISCONNECT | UV_WRITABLE);
  return int_value(env, 0);
}

/*
 * close(handle, afterWrite) -> 1 when the close waits for pending bytes (the callback then gets
 * the end), 0 when closed now. Reading stops at once either way.
 */
static napi_value Close(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bool after_write;
  if (args(env, info, 2, argv) < 0) return NULL;
  conn_t *c = conn_arg(env, argv[0]);
  if (!c) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &after_write));
  if (after_write && c->pending && !c->stopped) {
    c->end_after_write = 1;
    conn_poll(c, UV_WRITABLE);
    return int_value(env, 1);
  }
  conn_stop(c);
  return int_value(env, 0);
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
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
