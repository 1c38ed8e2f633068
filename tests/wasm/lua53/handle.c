/* A json-iface@1.0 `handle` around a Lua 5.3 state (hbeam's wasm64 test build).
 *
 * When the state is created, the Lua chunks embedded at build time (hb_chunks, generated
 * by build.py) are put in the global table _HB_SOURCES (name -> source) and the one named
 * "main", if any, is run: that is how aos_host.lua boots the aos runtime in the module.
 * boot(code) runs a Lua chunk (it may define the global `handle`); handle(msg, env)
 * calls handle(msgJson, envJson) in Lua and returns the string it returns, which must
 * be the aos result JSON.  Errors come back as {"ok":false,"error":...}.  handle frees
 * its two arguments (the host wrote them with the exported malloc and never reuses
 * them), so a long-running process does not leak a message per call.
 */
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

static lua_State *L;
static char *last;
static const char *init_error;

struct hb_chunk { const char *name, *code; size_t len; };
extern const struct hb_chunk hb_chunks[];

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

static const char *error_json(void);

static void init(void) {
  if (L) return;
  L = luaL_newstate();
  for (const luaL_Reg *lib = libs; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  const struct hb_chunk *boot_chunk = NULL;
  lua_newtable(L);
  for (const struct hb_chunk *c = hb_chunks; c->name; c++) {
    lua_pushlstring(L, c->code, c->len);
    lua_setfield(L, -2, c->name);
    if (!strcmp(c->name, "main")) boot_chunk = c;
  }
  lua_setglobal(L, "_HB_SOURCES");
  if (boot_chunk && (luaL_loadbufferx(L, boot_chunk->code, boot_chunk->len, "=main", "t") ||
               lua_pcall(L, 0, 0, 0))) {
    const char *e = error_json(); /* lives in `last`: keep a copy of its own */
    size_t n = strlen(e);
    char *copy = malloc(n + 1);
    if (copy) memcpy(copy, e, n + 1);
    init_error = copy ? copy : "{\"ok\":false,\"error\":\"the embedded runtime failed\"}";
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

__attribute__((export_name("handle"))) const char *handle(char *msg, char *env) {
  init();
  if (init_error) {
    free(msg);
    free(env);
    return init_error;
  }
  lua_getglobal(L, "handle");
  lua_pushstring(L, msg);
  lua_pushstring(L, env);
  free(msg);
  free(env);
  if (lua_pcall(L, 2, 1, 0)) return error_json();
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  const char *r = keep(s ? s : "", s ? n : 0);
  lua_pop(L, 1);
  return r;
}

__attribute__((export_name("malloc"))) void *hb_malloc(size_t n) { return malloc(n); }
__attribute__((export_name("free"))) void hb_free(void *p) { free(p); }
