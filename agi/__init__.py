"""FastAGI server and AMI outcome listener: outguard's screening for plain dialplans.

* :mod:`agi.server`: ``FastAgiServer`` answers ``AGI(agi://127.0.0.1:4573/screen,${EXTEN})``
  with the shared ``Screener`` and sets the ``OUTGUARD_*`` variables.
* :mod:`agi.outcomes`: ``AmiListener`` follows allowed calls over AMI (answer, duration,
  Q.850 cause) and releases their concurrency slots exactly once.
* :mod:`agi.ami`: the small AMI client underneath; :mod:`agi.protocol`: the FastAGI wire
  format as pure functions (quoting, environment, route, replies).

Both are wired in ``outguard.server.build_app``; each module says which panoramisk 1.4
defects it works around.
"""
