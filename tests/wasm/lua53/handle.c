/* A json-iface@1.0 `handle` around a Lua 5.3 state (hbeam's wasm64 test build).
 *
 * boot(code) runs a Lua chunk once (it defines the global `handle`); handle(msg, env)
 * calls handle(msgJson, envJson) in Lua and returns the string it returns, which must
 * be the aos result JSON.  Errors come back as {"ok":false,"error":...}.
 */
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

static lua_State *L;
static char *last;

static const luaL_Reg libs[] = {
  {"_G", luaopen_base},          {LUA_COLIBNAME, luaopen_coroutine},
  {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string},
  {LUA_MATHLIBNAME, luaopen_math}, {LUA_UTF8LIBNAME, luaopen_utf8},
  {NULL, NULL}};

static const char *keep(const char *s, size_t n) {
  free(last);
  last = malloc(n + 1);
  if (!last) return "";
  memcpy(last, s, n);
  last[n] = 0;
  return last;
}

static void init(void) {
  if (L) return;
  L = luaL_newstate();
  for (const luaL_Reg *lib = libs; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
}

static const char *error_json(void) {
  const char *msg = lua_tostring(L, -1);
  lua_pop(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "{\"ok\":false,\"error\":\"");
  for (const char *p = msg ? msg : "error"; *p; p++) {
    if (*p == '"' || *p == '\\') luaL_addchar(&b, '\\');
    luaL_addchar(&b, (*p == '\n') ? ' ' : *p);
  }
  luaL_addstring(&b, "\"}");
  luaL_pushresult(&b);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  const char *r = keep(s, n);
  lua_pop(L, 1);
  return r;
}

/* Run `code`; returns "" or the error JSON. */
__attribute__((export_name("boot"))) const char *boot(const char *code) {
  init();
  if (luaL_loadstring(L, code) || lua_pcall(L, 0, 0, 0)) return error_json();
  return keep("", 0);
}

/* Evaluate `code` and return tostring() of its first result (a debugging aid). */
__attribute__((export_name("eval"))) const char *eval(const char *code) {
  init();
  if (luaL_loadstring(L, code) || lua_pcall(L, 0, 1, 0)) return error_json();
  size_t n;
  const char *s = luaL_tolstring(L, -1, &n);
  const char *r = keep(s, n);
  lua_pop(L, 2);
  return r;
}

__attribute__((export_name("handle"))) const char *handle(const char *msg, const char *env) {
  init();
  lua_getglobal(L, "handle");
  lua_pushstring(L, msg);
  lua_pushstring(L, env);
  if (lua_pcall(L, 2, 1, 0)) return error_json();
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  const char *r = keep(s ? s : "", s ? n : 0);
  lua_pop(L, 1);
  return r;
}

__attribute__((export_name("malloc"))) void *hb_malloc(size_t n) { return malloc(n); }
__attribute__((export_name("free"))) void hb_free(void *p) { free(p); }
