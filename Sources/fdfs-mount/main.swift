#if canImport(Glibc)
import Glibc
#endif

import CFuse3

fdfs_tune_malloc()
exit(MountCommand.main(CommandLine.arguments))
