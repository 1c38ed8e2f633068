#pragma once
#define HUGE_VAL (__builtin_huge_val())
double floor(double); double ceil(double); double fmod(double, double);
double sqrt(double); double fabs(double); double pow(double, double);
double exp(double); double log(double); double log2(double); double log10(double);
double sin(double); double cos(double); double tan(double);
double asin(double); double acos(double); double atan2(double, double); double atan(double);
double frexp(double, int *); double ldexp(double, int);
