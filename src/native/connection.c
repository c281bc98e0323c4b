/*
 * Serving a stream socket or /dev/cuse from Node's event loop without Node's stream layer:
 *
 *   connect(fd, rx, tx, cb) / write(handle, bytes | n) / close(handle, afterWrite)
 *                           recvmsg(2) into the caller's buffer `rx`, so descriptors sent with
 *                           the bytes (SCM_RIGHTS) reach JS with those bytes, and send(2)
 *                           straight from the caller (from its buffer `tx` when given a length)
 *   watchDevice(fd, rx, tx, followUpUs, cb) / offer(handle, bytes | n) / takeWrites(handle, max)
 *   / deviceStats(handle)
 *                           the same reading for /dev/cuse (read(2), replies by write(2)), where
 *                           a TPM command's WRITE and the READs that fetch its response are
 *                           answered here
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "connection.h"

/* As many descriptors as one message may carry; the kernel closes any that do not fit. */
#define MAX_FDS 16

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
  int device;          /* /dev/cuse: read(2), one whole request each time; one write(2) per reply */
  long follow_up_ns;   /* devices: after a WRITE, how long to wait here for the READ that follows */
  char *offer;         /* devices: the TPM response READs are answered from here, without JS, */
  size_t offer_len;    /* from when JS offers it (after the WRITE that made it) until JS sees */
  size_t offer_off;    /* the next request; offer_off: the bytes READs have taken so far */
  int offering;
  uint32_t take_writes; /* devices: while > 0, a WRITE is answered here before JS sees it, */
                        /* taking at most this many bytes (JS says when its session allows) */
  /* devices, for deviceStats (doubles: exact in JS far beyond any daemon's lifetime): */
  double answered;      /* WRITEs answered here (answer_write) */
  double served;        /* READs of an offered response answered here (serve_offered_read) */
  double queued;        /* requests found already queued by the read right after a WRITE */
  char *rx;            /* the caller's receive buffer (a Uint8Array kept alive by rx_ref): */
  size_t rx_size;      /* each read lands here, and JS is told only how many bytes came */
  napi_ref rx_ref;
  char *tx;            /* the caller's send buffer: write(handle, n) and offer(handle, n) take */
  size_t tx_size;      /* their bytes from here. A small Uint8Array lives on V8's heap, and */
  napi_ref tx_ref;     /* asking for its memory would move it out (an allocation per reply) */
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

/* Everything a started connection holds but its own memory (conn_start set it all up). */
static void conn_free_resources(conn_t *c) {
  if (c->owns_fd) close(c->fd);
  free(c->pending);
  c->pending = NULL;
  free(c->offer);
  c->offer = NULL;
  napi_delete_reference(c->env, c->rx_ref);
  napi_delete_reference(c->env, c->tx_ref);
  napi_delete_reference(c->env, c->callback);
  napi_async_destroy(c->env, c->async);
}

static void conn_closed(uv_handle_t *handle) {
  conn_t *c = handle->data;
  conn_free_resources(c);
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

/*
 * callback(n, fds, errno, served, answered): n bytes arrived in rx (valid until the callback
 * returns: the next read overwrites them; no allocation per read), with the descriptors sent
 * along (null when none); n = 0 is the end (errno 0: the peer closed). served: how many bytes of
 * the offered response READs took here since the offer, which ends now (-1: nothing was on
 * offer). answered: the request is a WRITE answered here, which took that many bytes (0: not).
 */
static void deliver(conn_t *c, ssize_t n, const int *fds, int nfds, int err, uint32_t answered) {
  napi_env env = c->env;
  napi_value argv[5], cb, recv, result;
  int served = c->offering ? (int)c->offer_off : -1;
  c->offering = 0;
  napi_create_int32(env, n > 0 ? (int32_t)n : 0, &argv[0]);
  if (nfds > 0) {
    napi_create_array_with_length(env, nfds, &argv[1]);
    for (int i = 0; i < nfds; i++) {
      napi_value v;
      napi_create_int32(env, fds[i], &v);
      napi_set_element(env, argv[1], i, v);
    }
  } else {
    napi_get_null(env, &argv[1]);
  }
  napi_create_int32(env, err, &argv[2]);
  napi_create_int32(env, served, &argv[3]);
  napi_create_uint32(env, answered, &argv[4]);
  napi_get_reference_value(env, c->callback, &cb);
  napi_get_global(env, &recv); /* make_callback wants an object as `this` */
  if (napi_make_callback(env, c->async, recv, cb, 5, argv, &result) == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
}

/* The end of the connection, told to JS once: stop first, so JS sees a closed connection. */
static void conn_fail(conn_t *c, int err) {
  if (c->stopped) return;
  conn_stop(c);
  deliver(c, 0, NULL, 0, err, 0);
}

static void conn_poll(conn_t *c, int events);
static void device_readable(conn_t *c);

/* Sends buf from *off on; 0 when all is out, 1 when the socket is full, -errno on failure. */
static int send_from(int fd, const char *buf, size_t len, size_t *off) {
  while (*off < len) {
    ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
    *off += (size_t)n;
  }
  return 0;
}

/* Sends what is pending; as send_from. */
static int conn_flush(conn_t *c) {
  int rc = send_from(c->fd, c->pending, c->pending_len, &c->pending_off);
  if (rc != 0) return rc;
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

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* /dev/cuse: one whole request per read(), >0; 0 when none is there (or the end was told). */
static ssize_t device_read(conn_t *c) {
  ssize_t n;
  do n = read(c->fd, c->rx, c->rx_size);
  while (n < 0 && (errno == EINTR || errno == ENOENT)); /* ENOENT: an interrupted request */
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  if (n <= 0) conn_fail(c, n < 0 ? errno : 0);
  return n > 0 ? n : 0;
}

/*
 * A READ of the offered response, answered here (swtpm cuse's semantics, as session.ts serves
 * them): the next bytes from the read offset, none once it is used up. 0 for any other request.
 */
static int serve_offered_read(conn_t *c, size_t n) {
  struct fuse_in_header h;
  struct fuse_read_in r;
  if (!c->offering || n < sizeof h + sizeof r) return 0;
  memcpy(&h, c->rx, sizeof h);
  if (h.opcode != FUSE_READ || h.len != n) return 0;
  memcpy(&r, c->rx + sizeof h, sizeof r);
  size_t left = c->offer_len - c->offer_off;
  size_t take = r.size < left ? r.size : left;
  struct fuse_out_header o = {.len = (uint32_t)(sizeof o + take), .error = 0, .unique = h.unique};
  struct iovec iov[2] = {{.iov_base = &o, .iov_len = sizeof o}, {.iov_base = c->offer + c->offer_off, .iov_len = take}};
  ssize_t w;
  do w = writev(c->fd, iov, 2);
  while (w < 0 && errno == EINTR);
  if (w >= 0) c->offer_off += take; /* else ENOENT: the READ was interrupted, nothing taken */
  c->served++;
  return 1;
}

/*
 * A WRITE, answered here at once while JS allows it (take_writes): the client goes on to its READ
 * while JS runs the command. The reply says how much of the write was taken (swtpm takes up to
 * TPM_REQ_MAX); what it does not check (anything but a well-formed WRITE) is left to JS. 0 when
 * not answered. A failed reply (ENOENT: the client's write was interrupted) is not retried: the
 * command still runs, as when JS answers.
 */
static uint32_t answer_write(conn_t *c, size_t n) {
  struct fuse_in_header h;
  struct fuse_write_in w;
  if (c->take_writes == 0 || n < sizeof h + sizeof w) return 0;
  memcpy(&h, c->rx, sizeof h);
  if (h.opcode != FUSE_WRITE || h.len != n) return 0;
  memcpy(&w, c->rx + sizeof h, sizeof w);
  if (w.size == 0 || w.size > n - sizeof h - sizeof w) return 0;
  uint32_t taken = w.size < c->take_writes ? w.size : c->take_writes;
  struct {
    struct fuse_out_header h;
    struct fuse_write_out w;
  } r = {.h = {.len = sizeof r, .error = 0, .unique = h.unique}, .w = {.size = taken}};
  ssize_t rc;
  do rc = write(c->fd, &r, sizeof r);
  while (rc < 0 && errno == EINTR);
  c->answered++;
  return taken;
}

/*
 * Requests from /dev/cuse. A TPM command's WRITE is answered before the command runs, here or by
 * JS, and JS offers the response by the time deliver returns, so the client has been on its way
 * to its READ all that time and the READ is usually queued already: read once more at once and
 * answer it here, instead of going back to sleep in the event loop and being woken for it.
 * follow_up_ns > 0 keeps polling the non-blocking channel that long for a READ not there yet.
 */
static void device_readable(conn_t *c) {
  ssize_t n = device_read(c);
  while (n > 0 && !c->stopped) {
    if (serve_offered_read(c, (size_t)n)) return;
    struct fuse_in_header h = {0};
    if ((size_t)n >= sizeof h) memcpy(&h, c->rx, sizeof h);
    deliver(c, n, NULL, 0, 0, answer_write(c, (size_t)n));
    if (h.opcode != FUSE_WRITE || !c->offering || c->stopped) return;
    long deadline = c->follow_up_ns > 0 ? now_ns() + c->follow_up_ns : 0;
    while ((n = device_read(c)) == 0 && !c->stopped && deadline > 0 && now_ns() < deadline) continue;
    if (n > 0) c->queued++;
  }
}

/*
 * One read per readable event: the poll is level-triggered, so whatever is left wakes the loop
 * again, and the common case (one command, then silence) costs no read that finds nothing.
 */
static void conn_readable(conn_t *c) {
  if (c->device) return device_readable(c);
  for (;;) {
    union {
      struct cmsghdr align;
      char space[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    } control;
    struct iovec iov = {.iov_base = c->rx, .iov_len = c->rx_size};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof control.space};
    ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) return conn_fail(c, n < 0 ? errno : 0);
    int fds[MAX_FDS], nfds = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
      if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
      int count = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < count && nfds < MAX_FDS; i++) memcpy(&fds[nfds++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
    }
    return deliver(c, n, fds, nfds, 0, 0);
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

/*
 * The (handle, bytes | n) arguments of write and offer: the bytes, or the first n of tx; NULL
 * when they are not that.
 */
static conn_t *conn_and_bytes(napi_env env, napi_callback_info info, void **data, size_t *size) {
  napi_value argv[2];
  napi_valuetype kind;
  uint32_t n;
  if (args(env, info, 2, argv) < 0) return NULL;
  conn_t *c = conn_arg(env, argv[0]);
  if (c && napi_typeof(env, argv[1], &kind) == napi_ok && kind == napi_number) {
    if (napi_get_value_uint32(env, argv[1], &n) == napi_ok && n <= c->tx_size) {
      *data = c->tx;
      *size = n;
      return c;
    }
  } else if (c && napi_get_buffer_info(env, argv[1], data, size) == napi_ok) {
    return c;
  }
  napi_throw_type_error(env, NULL, "vtpmd_native: expected a connection and a Uint8Array or a length within tx");
  return NULL;
}

/* A non-empty Uint8Array's memory; false for anything else. */
static bool bytes_of(napi_env env, napi_value v, char **data, size_t *length) {
  napi_typedarray_type type;
  bool is_array;
  if (napi_is_typedarray(env, v, &is_array) != napi_ok || !is_array) return false;
  if (napi_get_typedarray_info(env, v, &type, length, (void **)data, NULL, NULL) != napi_ok) return false;
  return type == napi_uint8_array && *length > 0;
}

/*
 * Starts polling c->fd for reading into `rx` and writing from `tx` (Uint8Arrays); returns the JS
 * handle, or -errno (c is then released).
 */
static napi_value conn_start(napi_env env, conn_t *c, napi_value rx, napi_value tx, napi_value callback) {
  napi_value name, handle;
  uv_loop_t *loop;
  if (!bytes_of(env, rx, &c->rx, &c->rx_size) || !bytes_of(env, tx, &c->tx, &c->tx_size)) {
    if (c->owns_fd) close(c->fd);
    free(c);
    return int_value(env, -EINVAL);
  }
  CHECK(napi_get_uv_event_loop(env, &loop));
  c->env = env;
  c->owners = 1; /* the poll handle; the JS handle counts once it exists */
  c->poll.data = c;
  CHECK(napi_create_reference(env, rx, 1, &c->rx_ref));
  CHECK(napi_create_reference(env, tx, 1, &c->tx_ref));
  CHECK(napi_create_reference(env, callback, 1, &c->callback));
  CHECK(napi_create_string_utf8(env, "vtpmd:connection", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &c->async));
  int rc = c->device ? uv_poll_init(loop, &c->poll, c->fd) : uv_poll_init_socket(loop, &c->poll, c->fd);
  if (rc < 0) {
    /* No handle to close: what conn_closed would do, by hand. */
    conn_free_resources(c);
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

/*
 * connect(fd, rx, tx, callback) -> handle or -errno. Serves a duplicate of fd until the end or
 * close, reading into rx.
 */
napi_value Connect(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd;
  if (args(env, info, 4, argv) < 0) return NULL;
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
  return conn_start(env, c, argv[1], argv[2], argv[3]);
}

/*
 * watchDevice(fd, rx, tx, followUpUs, callback) -> handle or -errno. Reads fd itself (the caller
 * keeps and closes it, after close(handle)), one read() of up to rx's length per request.
 */
napi_value WatchDevice(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd, follow_up_us;
  if (args(env, info, 5, argv) < 0) return NULL;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[3], &follow_up_us));
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return int_value(env, -ENOMEM);
  c->fd = fd;
  c->device = 1;
  c->follow_up_ns = follow_up_us > 0 ? follow_up_us * 1000L : 0;
  return conn_start(env, c, argv[1], argv[2], argv[4]);
}

/*
 * offer(handle, response | n) -> 0 or -errno. A device's READs are answered from a copy of the
 * response until the next request JS sees (which tells how much of it they took).
 */
napi_value Offer(napi_env env, napi_callback_info info) {
  void *data;
  size_t size;
  conn_t *c = conn_and_bytes(env, info, &data, &size);
  if (!c) return NULL;
  if (!c->device || c->stopped) return int_value(env, -EINVAL);
  char *grown = realloc(c->offer, size ? size : 1);
  if (!grown) return int_value(env, -ENOMEM);
  c->offer = grown;
  memcpy(c->offer, data, size);
  c->offer_len = size;
  c->offer_off = 0;
  c->offering = 1;
  return int_value(env, 0);
}

/*
 * takeWrites(handle, max) -> 0 or -errno. A device's WRITEs are answered here, taking up to max
 * bytes, from the next request on (0: JS answers them).
 */
napi_value TakeWrites(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t max;
  if (args(env, info, 2, argv) < 0) return NULL;
  conn_t *c = conn_arg(env, argv[0]);
  if (!c) return NULL;
  CHECK(napi_get_value_uint32(env, argv[1], &max));
  if (!c->device) return int_value(env, -EINVAL);
  c->take_writes = max;
  return int_value(env, 0);
}

/*
 * deviceStats(handle) -> [WRITEs answered here, READs served here, requests found queued at once
 * after a WRITE], or -errno.
 */
napi_value DeviceStats(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, v;
  if (args(env, info, 1, argv) < 0) return NULL;
  conn_t *c = conn_arg(env, argv[0]);
  if (!c) return NULL;
  if (!c->device) return int_value(env, -EINVAL);
  double counts[3] = {c->answered, c->served, c->queued};
  CHECK(napi_create_array_with_length(env, 3, &out));
  for (uint32_t i = 0; i < 3; i++) {
    CHECK(napi_create_double(env, counts[i], &v));
    CHECK(napi_set_element(env, out, i, v));
  }
  return out;
}

/*
 * write(handle, bytes | n) -> 0 or -errno. Sent at once when the socket takes it (a TPM
 * response always fits); the rest waits for the socket, in order.
 */
napi_value Write(napi_env env, napi_callback_info info) {
  void *data;
  size_t size;
  conn_t *c = conn_and_bytes(env, info, &data, &size);
  if (!c) return NULL;
  if (c->stopped || c->end_after_write) return int_value(env, -EPIPE);
  if (c->device) {
    /* A FUSE reply is one write(2), taken whole or refused (ENOENT: the request is gone). */
    ssize_t n;
    do n = write(c->fd, data, size);
    while (n < 0 && errno == EINTR);
    return int_value(env, n < 0 ? -errno : 0);
  }
  /* Behind bytes still pending, these wait too (in order). */
  size_t off = 0;
  if (!c->pending) {
    int rc = send_from(c->fd, data, size, &off);
    if (rc < 0) return int_value(env, rc);
    if (rc == 0) return int_value(env, 0);
  }
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
napi_value Close(napi_env env, napi_callback_info info) {
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
