"""What imports cost in memory: `python -m bench.import_rss MODULE [MODULE ...]`.

Starts a fresh interpreter (this one's, with its environment) and prints its VmRSS after
start-up and after importing each MODULE in turn, so each line's growth is what that module
adds to the ones before it (`asyncio,ssl` imports both on one line). Run it again with the
modules in another order to see what two of them share.
"""

from __future__ import annotations

import subprocess
import sys

_CHILD = """
import importlib, sys

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

print(f"start-up\\t{rss():.1f}", flush=True)
for step in sys.argv[1:]:
    for name in step.split(","):
        importlib.import_module(name)
    print(f"{step}\\t{rss():.1f}", flush=True)
"""


def main() -> None:
    """Print the RSS after each import."""
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *sys.argv[1:]], capture_output=True, text=True, check=True
    ).stdout
    last = None
    for line in out.splitlines():
        name, mb = line.split("\t")
        value = float(mb)
        grew = "" if last is None else f"  (+{value - last:.1f})"
        print(f"  {name:<40} VmRSS {value:6.1f} MB{grew}")
        last = value


if __name__ == "__main__":
    main()
