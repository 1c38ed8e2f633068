/* A minimal deterministic C library for Lua 5.3 on wasm64-freestanding (hbeam's test build).
 *
 * zig ships no libc for wasm64, so this provides exactly what Lua's core and its base,
 * coroutine, string, table, math and utf8 libraries call: memory and string functions,
 * a size-class allocator on memory.grow, a small printf/strtod (about 15 significant
 * digits: enough for Lua's "%.14g"), the few math functions compiler-rt lacks, ctype,
 * and the runtime of LLVM's wasm setjmp/longjmp lowering (longjmp throws the
 * __c_longjmp tag, so the module uses the legacy exception-handling instructions that
 * hbeam translates at load).  No clock, no files, no entropy: deterministic.
 */
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int errno;

/* ---- memory and strings ---------------------------------------------------------- */

void *memcpy(void *restrict d, const void *restrict s, size_t n) {
  unsigned char *o = d; const unsigned char *i = s;
  while (n--) *o++ = *i++;
  return d;
}
void *memmove(void *d, const void *s, size_t n) {
  unsigned char *o = d; const unsigned char *i = s;
  if (o < i) { while (n--) *o++ = *i++; }
  else { o += n; i += n; while (n--) *--o = *--i; }
  return d;
}
void *memset(void *d, int c, size_t n) {
  unsigned char *o = d;
  while (n--) *o++ = (unsigned char)c;
  return d;
}
int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++) if (*x != *y) return *x - *y;
  return 0;
}
void *memchr(const void *s, int c, size_t n) {
  const unsigned char *p = s;
  for (; n; n--, p++) if (*p == (unsigned char)c) return (void *)p;
  return NULL;
}
size_t strlen(const char *s) { const char *p = s; while (*p) p++; return (size_t)(p - s); }
int strcmp(const char *a, const char *b) {
  while (*a && *a == *b) { a++; b++; }
  return (unsigned char)*a - (unsigned char)*b;
}
int strncmp(const char *a, const char *b, size_t n) {
  for (; n; n--, a++, b++) { if (*a != *b || !*a) return (unsigned char)*a - (unsigned char)*b; }
  return 0;
}
int strcoll(const char *a, const char *b) { return strcmp(a, b); }
char *strchr(const char *s, int c) {
  for (;; s++) { if (*s == (char)c) return (char *)s; if (!*s) return NULL; }
}
char *strrchr(const char *s, int c) {
  const char *r = NULL;
  for (;; s++) { if (*s == (char)c) r = s; if (!*s) return (char *)r; }
}
char *strstr(const char *h, const char *n) {
  size_t k = strlen(n);
  if (!k) return (char *)h;
  for (; *h; h++) if (!strncmp(h, n, k)) return (char *)h;
  return NULL;
}
size_t strspn(const char *s, const char *a) { size_t n = 0; while (s[n] && strchr(a, s[n])) n++; return n; }
size_t strcspn(const char *s, const char *r) { size_t n = 0; while (s[n] && !strchr(r, s[n])) n++; return n; }
char *strpbrk(const char *s, const char *a) { s += strcspn(s, a); return *s ? (char *)s : NULL; }
char *strcpy(char *restrict d, const char *restrict s) { char *r = d; while ((*d++ = *s++)) {} return r; }
char *strncpy(char *restrict d, const char *restrict s, size_t n) {
  size_t i = 0;
  for (; i < n && s[i]; i++) d[i] = s[i];
  for (; i < n; i++) d[i] = 0;
  return d;
}
char *strcat(char *restrict d, const char *restrict s) { strcpy(d + strlen(d), s); return d; }
char *strerror(int e) { (void)e; return "error"; }

/* ---- allocator: power-of-two size classes over memory.grow ------------------------- */

extern unsigned char __heap_base;
static uintptr_t heap_next;
static void *free_lists[64];

static void *grow_to(size_t bytes) {
  if (!heap_next) heap_next = ((uintptr_t)&__heap_base + 15) & ~(uintptr_t)15;
  uintptr_t p = heap_next, end = p + bytes;
  size_t have = __builtin_wasm_memory_size(0) * 65536;
  if (end > have) {
    size_t pages = (end - have + 65535) / 65536;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return NULL;
  }
  heap_next = end;
  return (void *)p;
}

void *malloc(size_t n) {
  unsigned cls = 4;
  while (((size_t)1 << cls) < n + 16) cls++;
  if (cls >= 48) return NULL;
  void *block = free_lists[cls];
  if (block) free_lists[cls] = *(void **)block;
  else if (!(block = grow_to((size_t)1 << cls))) return NULL;
  *(size_t *)block = cls;
  return (unsigned char *)block + 16;
}
void free(void *p) {
  if (!p) return;
  void *block = (unsigned char *)p - 16;
  size_t cls = *(size_t *)block;
  *(void **)block = free_lists[cls];
  free_lists[cls] = block;
}
void *realloc(void *p, size_t n) {
  if (!p) return malloc(n);
  if (!n) { free(p); return NULL; }
  size_t cls = *(size_t *)((unsigned char *)p - 16);
  size_t cap = ((size_t)1 << cls) - 16;
  if (n <= cap) return p;
  void *q = malloc(n);
  if (q) { memcpy(q, p, cap); free(p); }
  return q;
}
void *calloc(size_t n, size_t m) { void *p = malloc(n * m); if (p) memset(p, 0, n * m); return p; }

_Noreturn void abort(void) { __builtin_trap(); }
_Noreturn void exit(int code) { (void)code; __builtin_trap(); }
char *getenv(const char *name) { (void)name; return NULL; }
int abs(int x) { return x < 0 ? -x : x; }
static uint64_t rand_state = 1;
void srand(unsigned seed) { rand_state = seed; }
int rand(void) { rand_state = rand_state * 6364136223846793005ULL + 1442695040888963407ULL; return (int)(rand_state >> 33); }
time_t time(time_t *t) { if (t) *t = 1; return 1; }
clock_t clock(void) { return 0; }
static struct lconv hb_lconv = {"."};
struct lconv *localeconv(void) { return &hb_lconv; }

/* ---- ctype (ASCII) ------------------------------------------------------------------ */

int isdigit(int c) { return c >= '0' && c <= '9'; }
int islower(int c) { return c >= 'a' && c <= 'z'; }
int isupper(int c) { return c >= 'A' && c <= 'Z'; }
int isalpha(int c) { return islower(c) || isupper(c); }
int isalnum(int c) { return isalpha(c) || isdigit(c); }
int isspace(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
int iscntrl(int c) { return (c >= 0 && c < 32) || c == 127; }
int isprint(int c) { return c >= 32 && c < 127; }
int isgraph(int c) { return c > 32 && c < 127; }
int ispunct(int c) { return isgraph(c) && !isalnum(c); }
int isxdigit(int c) { return isdigit(c) || ((c | 32) >= 'a' && (c | 32) <= 'f'); }
int tolower(int c) { return isupper(c) ? c + 32 : c; }
int toupper(int c) { return islower(c) ? c - 32 : c; }

/* ---- math that compiler-rt does not provide ----------------------------------------- */

double frexp(double x, int *e) {
  *e = 0;
  if (x == 0 || x != x || x == HUGE_VAL || x == -HUGE_VAL) return x;
  union { double d; uint64_t u; } v = {x};
  int be = (int)((v.u >> 52) & 0x7ff);
  if (!be) { v.d *= 0x1p64; be = (int)((v.u >> 52) & 0x7ff) - 64; }
  *e = be - 1022;
  v.u = (v.u & ~(0x7ffULL << 52)) | (1022ULL << 52);
  return v.d;
}
double ldexp(double x, int e) {
  while (e > 1000) { x *= 0x1p1000; e -= 1000; }
  while (e < -1000) { x *= 0x1p-1000; e += 1000; }
  union { double d; uint64_t u; } s = {0};
  s.u = (uint64_t)(e + 1023) << 52;
  return x * s.d;
}
double pow(double a, double b) {
  if (b == 0) return 1;
  if (b == (double)(long long)b && fabs(b) < 1e9) {
    long long n = (long long)b; double r = 1, base = a;
    unsigned long long k = n < 0 ? -(unsigned long long)n : (unsigned long long)n;
    for (; k; k >>= 1, base *= base) if (k & 1) r *= base;
    return n < 0 ? 1 / r : r;
  }
  if (a < 0) return 0.0 / 0.0;
  return exp(b * log(a));
}
double atan(double x) {
  /* reduce to |x| <= tan(pi/12), then the series */
  int inv = 0, neg = x < 0;
  if (neg) x = -x;
  if (x > 1) { x = 1 / x; inv = 1; }
  int shift = 0;
  if (x > 0.2679491924311227) { x = (x * 1.7320508075688772 - 1) / (x + 1.7320508075688772); shift = 1; }
  double x2 = x * x, term = x, sum = 0;
  for (int i = 1; i < 60; i += 2) { sum += term / i; term *= -x2; }
  if (shift) sum += 0.5235987755982988;
  if (inv) sum = 1.5707963267948966 - sum;
  return neg ? -sum : sum;
}
double atan2(double y, double x) {
  if (x > 0) return atan(y / x);
  if (x < 0) return y >= 0 ? atan(y / x) + 3.141592653589793 : atan(y / x) - 3.141592653589793;
  return y > 0 ? 1.5707963267948966 : y < 0 ? -1.5707963267948966 : 0;
}
double asin(double x) { return atan2(x, sqrt((1 - x) * (1 + x))); }
double acos(double x) { return atan2(sqrt((1 - x) * (1 + x)), x); }

/* ---- strtod / strtol ---------------------------------------------------------------- */

double strtod(const char *restrict s, char **restrict end) {
  const char *p = s;
  while (isspace((unsigned char)*p)) p++;
  int neg = 0;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  uint64_t mant = 0; int digits = 0, exp10 = 0, any = 0;
  for (; isdigit((unsigned char)*p); p++, any = 1) {
    if (digits < 19) { mant = mant * 10 + (uint64_t)(*p - '0'); if (mant) digits++; } else exp10++;
  }
  if (*p == '.') {
    for (p++; isdigit((unsigned char)*p); p++, any = 1) {
      if (digits < 19) { mant = mant * 10 + (uint64_t)(*p - '0'); if (mant) digits++; exp10--; }
    }
  }
  if (!any) { if (end) *end = (char *)s; return 0; }
  if (*p == 'e' || *p == 'E') {
    const char *q = p + 1; int eneg = 0, e = 0;
    if (*q == '+' || *q == '-') eneg = *q++ == '-';
    if (isdigit((unsigned char)*q)) {
      for (; isdigit((unsigned char)*q); q++) if (e < 10000) e = e * 10 + (*q - '0');
      exp10 += eneg ? -e : e;
      p = q;
    }
  }
  double v = (double)mant, scale = 1, ten = 10;
  int k = exp10 < 0 ? -exp10 : exp10;
  for (; k; k >>= 1, ten *= ten) if (k & 1) scale *= ten;
  v = exp10 < 0 ? v / scale : v * scale;
  if (end) *end = (char *)p;
  return neg ? -v : v;
}
unsigned long strtoul(const char *restrict s, char **restrict end, int base) {
  const char *p = s; unsigned long v = 0;
  while (isspace((unsigned char)*p)) p++;
  if (!base) base = 10;
  for (;; p++) {
    int d = isdigit((unsigned char)*p) ? *p - '0' : isalpha((unsigned char)*p) ? (tolower(*p) - 'a' + 10) : 99;
    if (d >= base) break;
    v = v * (unsigned long)base + (unsigned long)d;
  }
  if (end) *end = (char *)p;
  return v;
}
long strtol(const char *restrict s, char **restrict end, int base) {
  while (isspace((unsigned char)*s)) s++;
  if (*s == '-') return -(long)strtoul(s + 1, end, base);
  return (long)strtoul(s, end, base);
}

/* ---- printf -------------------------------------------------------------------------- */

struct out { char *buf; size_t cap, len; };
static void put(struct out *o, char c) { if (o->len + 1 < o->cap) o->buf[o->len] = c; o->len++; }
static void puts_n(struct out *o, const char *s, size_t n) { while (n--) put(o, *s++); }
static void pad(struct out *o, int n, char c) { while (n-- > 0) put(o, c); }

static int fmt_uint(char *tmp, unsigned long long v, int base, int upper) {
  const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char rev[32]; int n = 0;
  do { rev[n++] = dig[v % (unsigned)base]; v /= (unsigned)base; } while (v);
  for (int i = 0; i < n; i++) tmp[i] = rev[n - 1 - i];
  return n;
}

/* The first `prec` significant decimal digits of x > 0 (rounded), and its exponent. */
static int sig_digits(double x, int prec, char *d, int *e10) {
  int e = 0;
  while (x >= 1e16) { x /= 1e16; e += 16; }
  while (x >= 10) { x /= 10; e++; }
  while (x < 1e-16) { x *= 1e16; e -= 16; }
  while (x < 1) { x *= 10; e--; }
  if (prec > 17) prec = 17;
  /* x in [1, 10): scale to an integer with prec digits and round */
  double scaled = x;
  for (int i = 1; i < prec; i++) scaled *= 10;
  unsigned long long m = (unsigned long long)(scaled + 0.5);
  unsigned long long lim = 1; for (int i = 0; i < prec; i++) lim *= 10;
  if (m >= lim) { m /= 10; e++; }
  for (int i = prec - 1; i >= 0; i--) { d[i] = (char)('0' + m % 10); m /= 10; }
  *e10 = e;
  return prec;
}

static void fmt_double(struct out *o, double x, char conv, int prec, int width, int left,
                       int plus, int alt, int zero) {
  char tmp[400]; int n = 0;
  int neg = x < 0 || (x == 0 && 1 / x < 0);
  if (neg) x = -x;
  int upper = conv == 'G' || conv == 'E' || conv == 'F';
  char lc = (char)(conv | 32);
  if (x != x || x == HUGE_VAL) {
    const char *s = x != x ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
    memcpy(tmp, s, 3); n = 3; zero = 0;
  } else {
    if (prec < 0) prec = 6;
    char d[20]; int e10 = 0;
    if (lc == 'g') {
      int p = prec ? prec : 1;
      if (x == 0) e10 = 0; else sig_digits(x, p, d, &e10);
      lc = (e10 < -4 || e10 >= p) ? 'e' : 'f';
      prec = lc == 'e' ? p - 1 : p - 1 - e10;
      if (!alt) {
        /* %g drops trailing zeros: count the significant digits really needed */
        int sig = p;
        if (x != 0) { while (sig > 1 && d[sig - 1] == '0') sig--; } else sig = 1;
        prec = lc == 'e' ? sig - 1 : (sig - 1 - e10 > 0 ? sig - 1 - e10 : 0);
      }
    }
    if (lc == 'e') {
      int nd = prec + 1;
      if (x == 0) { memset(d, '0', 20); e10 = 0; } else sig_digits(x, nd > 17 ? 17 : nd, d, &e10);
      tmp[n++] = d[0];
      if (prec || alt) tmp[n++] = '.';
      for (int i = 1; i < nd; i++) tmp[n++] = i < 17 ? d[i] : '0';
      tmp[n++] = upper ? 'E' : 'e';
      tmp[n++] = e10 < 0 ? '-' : '+';
      int ae = e10 < 0 ? -e10 : e10;
      if (ae < 10) tmp[n++] = '0';
      n += fmt_uint(tmp + n, (unsigned)ae, 10, 0);
    } else { /* 'f' */
      if (x >= 1e17) {
        sig_digits(x, 17, d, &e10);
        for (int i = 0; i <= e10 && n < 330; i++) tmp[n++] = i < 17 ? d[i] : '0';
        if (prec || alt) tmp[n++] = '.';
        for (int i = 0; i < prec && n < 390; i++) tmp[n++] = '0';
      } else {
        double r = 0.5; for (int i = 0; i < prec && i < 17; i++) r /= 10;
        double y = x + r;
        unsigned long long ip = (unsigned long long)y;
        n += fmt_uint(tmp + n, ip, 10, 0);
        if (prec || alt) tmp[n++] = '.';
        double frac = y - (double)ip;
        for (int i = 0; i < prec && n < 390; i++) {
          frac *= 10; int dgt = (int)frac; if (dgt > 9) dgt = 9;
          tmp[n++] = (char)('0' + (i < 17 ? dgt : 0)); frac -= dgt;
        }
      }
    }
  }
  int signlen = neg || plus;
  int fill = width - n - signlen;
  if (!left && !zero) pad(o, fill, ' ');
  if (neg) put(o, '-'); else if (plus) put(o, '+');
  if (!left && zero) pad(o, fill, '0');
  puts_n(o, tmp, (size_t)n);
  if (left) pad(o, fill, ' ');
}

int vsnprintf(char *restrict buf, size_t cap, const char *restrict f, va_list ap) {
  struct out o = {buf, cap, 0};
  for (; *f; f++) {
    if (*f != '%') { put(&o, *f); continue; }
    f++;
    int left = 0, plus = 0, alt = 0, zero = 0, space = 0, width = 0, prec = -1, lng = 0;
    for (;; f++) {
      if (*f == '-') left = 1; else if (*f == '+') plus = 1; else if (*f == '#') alt = 1;
      else if (*f == '0') zero = 1; else if (*f == ' ') space = 1; else break;
    }
    if (*f == '*') { width = va_arg(ap, int); f++; } else while (isdigit((unsigned char)*f)) width = width * 10 + (*f++ - '0');
    if (*f == '.') {
      f++; prec = 0;
      if (*f == '*') { prec = va_arg(ap, int); f++; } else while (isdigit((unsigned char)*f)) prec = prec * 10 + (*f++ - '0');
    }
    while (*f == 'l' || *f == 'h' || *f == 'z' || *f == 'j' || *f == 't') { if (*f == 'l' || *f == 'z' || *f == 'j' || *f == 't') lng++; f++; }
    char tmp[72]; int n = 0; const char *s = tmp; int neg = 0;
    switch (*f) {
      case 'd': case 'i': {
        long long v = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
        unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
        neg = v < 0; n = fmt_uint(tmp, u, 10, 0); break;
      }
      case 'u': case 'x': case 'X': case 'o': {
        unsigned long long v = lng >= 2 ? va_arg(ap, unsigned long long) : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
        n = fmt_uint(tmp, v, *f == 'u' ? 10 : *f == 'o' ? 8 : 16, *f == 'X'); break;
      }
      case 'p': {
        tmp[0] = '0'; tmp[1] = 'x';
        n = 2 + fmt_uint(tmp + 2, (unsigned long long)(uintptr_t)va_arg(ap, void *), 16, 0); break;
      }
      case 'c': tmp[0] = (char)va_arg(ap, int); n = 1; break;
      case 's': s = va_arg(ap, const char *); if (!s) s = "(null)"; n = (int)strlen(s); if (prec >= 0 && n > prec) n = prec; break;
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A':
        fmt_double(&o, va_arg(ap, double), *f == 'a' ? 'g' : *f == 'A' ? 'G' : *f, prec, width, left, plus || space, alt, zero);
        continue;
      case '%': put(&o, '%'); continue;
      default: put(&o, '%'); put(&o, *f); continue;
    }
    if (prec >= 0 && (*f == 'd' || *f == 'i' || *f == 'u' || *f == 'x' || *f == 'X' || *f == 'o')) {
      zero = 0;
      int z = prec - n; char t2[72];
      if (z > 0 && n + z < 72) { memset(t2, '0', (size_t)z); memcpy(t2 + z, tmp, (size_t)n); memcpy(tmp, t2, (size_t)(n + z)); n += z; }
    }
    int signlen = neg || ((plus || space) && (*f == 'd' || *f == 'i'));
    int fill = width - n - signlen;
    if (!left && !zero) pad(&o, fill, ' ');
    if (neg) put(&o, '-'); else if (signlen) put(&o, plus ? '+' : ' ');
    if (!left && zero) pad(&o, fill, '0');
    puts_n(&o, s, (size_t)n);
    if (left) pad(&o, fill, ' ');
  }
  if (cap) o.buf[o.len < cap ? o.len : cap - 1] = 0;
  return (int)o.len;
}
int snprintf(char *restrict b, size_t n, const char *restrict f, ...) {
  va_list ap; va_start(ap, f); int r = vsnprintf(b, n, f, ap); va_end(ap); return r;
}
int sprintf(char *restrict b, const char *restrict f, ...) {
  va_list ap; va_start(ap, f); int r = vsnprintf(b, (size_t)-1 / 2, f, ap); va_end(ap); return r;
}

/* ---- stdio: output is collected in a buffer the host can read; no files --------------- */

struct hb_file { int fd; };
static struct hb_file files[3] = {{0}, {1}, {2}};
FILE *const stdin = &files[0], *const stdout = &files[1], *const stderr = &files[2];
char hb_output[1 << 16];
size_t hb_output_len;

size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict fp) {
  (void)fp;
  size_t total = size * n;
  const char *c = p;
  for (size_t i = 0; i < total; i++) if (hb_output_len + 1 < sizeof hb_output) hb_output[hb_output_len++] = c[i];
  hb_output[hb_output_len] = 0;
  return n;
}
int fputs(const char *restrict s, FILE *restrict fp) { fwrite(s, 1, strlen(s), fp); return 0; }
int fprintf(FILE *restrict fp, const char *restrict f, ...) {
  char b[1024]; va_list ap; va_start(ap, f); int r = vsnprintf(b, sizeof b, f, ap); va_end(ap);
  fputs(b, fp); return r;
}
int printf(const char *restrict f, ...) {
  char b[1024]; va_list ap; va_start(ap, f); int r = vsnprintf(b, sizeof b, f, ap); va_end(ap);
  fputs(b, stdout); return r;
}
int fflush(FILE *fp) { (void)fp; return 0; }
size_t fread(void *restrict p, size_t s, size_t n, FILE *restrict fp) { (void)p; (void)s; (void)n; (void)fp; return 0; }
int getc(FILE *fp) { (void)fp; return EOF; }
int ferror(FILE *fp) { (void)fp; return 0; }
int feof(FILE *fp) { (void)fp; return 1; }
FILE *fopen(const char *restrict path, const char *restrict mode) { (void)path; (void)mode; errno = ENOENT; return NULL; }
FILE *freopen(const char *restrict path, const char *restrict mode, FILE *restrict fp) { (void)path; (void)mode; (void)fp; return NULL; }
int fclose(FILE *fp) { (void)fp; return 0; }

/* ---- runtime of LLVM's wasm setjmp/longjmp lowering ------------------------------------ */

struct hb_jmp { void *id; unsigned label; void *env; int val; };

void __wasm_setjmp(void *env, unsigned label, void *id) {
  struct hb_jmp *j = env;
  j->id = id;
  j->label = label;
}
unsigned __wasm_setjmp_test(void *env, void *id) {
  struct hb_jmp *j = env;
  return j->id == id ? j->label : 0;
}
_Noreturn void __wasm_longjmp(void *env, int val) {
  struct hb_jmp *j = env;
  j->env = env;
  j->val = val ? val : 1;
  __builtin_wasm_throw(1, &j->env); /* tag 1 is __c_longjmp, carrying {env, val} */
}
