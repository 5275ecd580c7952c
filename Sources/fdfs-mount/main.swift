import CFuse3

#if canImport(Glibc)
import Glibc
#endif

fdfs_tune_malloc()
// A parent (a test runner, a service manager) may have blocked or ignored the stop signals;
// libfuse only installs its handlers over the default disposition.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
for sig in [SIGTERM, SIGINT, SIGHUP] {
    sigaddset(&stopSignals, sig)
    signal(sig, SIG_DFL)
}
pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
exit(MountCommand.main(CommandLine.arguments))
