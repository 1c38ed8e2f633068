#pragma once
extern int errno;
#define ENOENT 2
#define ERANGE 34
