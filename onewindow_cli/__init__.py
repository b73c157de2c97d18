"""The entry points of onewindow: the `onewindow` command line, the local stack (`up`) and
the benchmarks. They sit above the runtimes (producers, stream_apps, sinks, counter) and
wire them together; nothing below imports this package (an import-linter layers
contract in pyproject.toml pins it)."""
