"""The command line: a thin layer over the library; exit codes in one place."""
