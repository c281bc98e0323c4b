/* What every function of the addon needs from N-API: checked calls, numbers, arguments. */
#ifndef VTPMD_NAPI_UTIL_H
#define VTPMD_NAPI_UTIL_H

#define NAPI_VERSION 8
#include <node_api.h>

#define CHECK(call)                                                                    \
  do {                                                                                 \
    if ((call) != napi_ok) {                                                           \
      napi_throw_error(env, NULL, "vtpmd_native: " #call " failed");                   \
      return NULL;                                                                     \
    }                                                                                  \
  } while (0)

static inline napi_value int_value(napi_env env, int v) {
  napi_value out;
  CHECK(napi_create_int32(env, v, &out));
  return out;
}

static inline int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "vtpmd_native: missing arguments");
    return -1;
  }
  return 0;
}

#endif
