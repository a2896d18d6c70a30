"""Run a command under a real pseudo-terminal for the e2e tests (test/helpers/pty.ts).

Bytes written to this script's stdin are typed into the terminal; everything the command prints
(stdout and stderr share the terminal) is copied to this script's stdout as it arrives. Exits with
the command's exit code, or 128+N when it died of signal N.
"""
import os
import pty
import select
import sys

pid, master = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])

stdin_open = True
while True:
    readable = [master] + ([0] if stdin_open else [])
    ready, _, _ = select.select(readable, [], [])
    if 0 in ready:
        typed = os.read(0, 4096)
        if typed:
            os.write(master, typed)
        else:
            stdin_open = False
    if master in ready:
        try:
            output = os.read(master, 4096)
        except OSError:  # EIO: the command closed the terminal (it exited)
            output = b""
        if not output:
            break
        os.write(1, output)

_, status = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
