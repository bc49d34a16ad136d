"""Runtime harness: engines for every format, benchmarks, reports, phones over adb, ARM64 emulation."""
