# gunicorn reads this file from the working directory: `web`, the benchmarks and the
# tests all run gunicorn from the project root. Command-line options still win.
logger_class = "flowhq.gunicorn_logging.StructuredLogger"
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl),
# which two gunicorns on one machine (web, a benchmark, the tests) would fight over;
# FlowHQ does not use it.
control_socket_disable = True
