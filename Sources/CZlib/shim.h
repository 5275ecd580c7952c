#ifndef FDFS_CZLIB_SHIM_H
#define FDFS_CZLIB_SHIM_H
#include <zlib.h>
#endif
