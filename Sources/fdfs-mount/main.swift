#if canImport(Glibc)
import Glibc
#endif

exit(MountCommand.main(CommandLine.arguments))
