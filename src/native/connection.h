/* Connections served from the event loop (connection.c): the addon's functions for them. */
#ifndef VTPMD_CONNECTION_H
#define VTPMD_CONNECTION_H

#include "napi-util.h"

napi_value Connect(napi_env env, napi_callback_info info);
napi_value WatchDevice(napi_env env, napi_callback_info info);
napi_value Offer(napi_env env, napi_callback_info info);
napi_value TakeWrites(napi_env env, napi_callback_info info);
napi_value DeviceStats(napi_env env, napi_callback_info info);
napi_value Write(napi_env env, napi_callback_info info);
napi_value Close(napi_env env, napi_callback_info info);

#endif
