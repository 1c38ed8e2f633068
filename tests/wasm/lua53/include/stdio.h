#pragma once
#include <stddef.h>
#include <stdarg.h>
#define EOF (-1)
#define BUFSIZ 512
typedef struct hb_file FILE;
extern FILE *const stdin, *const stdout, *const stderr;
int snprintf(char *restrict b, size_t n, const char *restrict f, ...);
int vsnprintf(char *restrict b, size_t n, const char *restrict f, va_list ap);
int sprintf(char *restrict b, const char *restrict f, ...);
int fprintf(FILE *restrict fp, const char *restrict f, ...);
int printf(const char *restrict f, ...);
size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict fp);
size_t fread(void *restrict p, size_t size, size_t n, FILE *restrict fp);
int fflush(FILE *fp);
int fputs(const char *restrict s, FILE *restrict fp);
int getc(FILE *fp);
int ferror(FILE *fp);
int feof(FILE *fp);
FILE *fopen(const char *restrict path, const char *restrict mode);
FILE *freopen(const char *restrict path, const char *restrict mode, FILE *restrict fp);
int fclose(FILE *fp);
